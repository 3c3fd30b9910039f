//! OCPP as the rest of voltfleet sees it: the typed messages of each protocol version, and the
//! command interface through which any service asks a charger to do something.
//!
//! The OCPP service (`voltfleet-ocpp`) is the only place that speaks OCPP-J on a socket; it
//! validates every payload against the official schemas at that boundary. Everything here is
//! plain data that other services can build and read without knowing about WebSockets;
//! [`diagnostics`] says where chargers upload the files GetDiagnostics asks for.

pub mod commands;
pub mod diagnostics;
pub mod events;
pub mod v16;
