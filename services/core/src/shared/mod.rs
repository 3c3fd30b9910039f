//! Fast state shared by the fleet: cache, bus, locks and counters, on Redis or in process.
