//! Hashing and checking of passwords and API keys.
