//! OCPP-J, the RPC framing every OCPP version shares: CALL, CALLRESULT and CALLERROR as JSON
//! arrays in WebSocket text messages.
//!
//! Parsing ([`frame::Frame::parse`]) is separate from handling: a text either becomes a typed
//! frame or a [`frame::Malformed`] that says how to answer it. Payloads stay JSON values here;
//! each version's module validates them against its schemas and turns them into typed messages.

pub mod error;
pub mod frame;

pub use error::{CallError, ErrorCode};
pub use frame::Frame;
