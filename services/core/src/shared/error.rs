//! The errors of the shared-state layer, split by who matches on them: [`SharedError`] for every
//! operation (HTTP handlers map [`SharedError::Unavailable`] to 503), [`BusError`] for the
//! request/reply failures a caller reacts to differently (no responder, no reply in time).

use std::time::Duration;

use humantime::format_duration;

/// Why a cache, bus, lock or counter operation failed.
///
/// No variant ever carries the password from `redis.url`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedError {
    /// Redis could not be reached or did not answer in time. The operation may be retried: the
    /// connection is re-established in the background. Callers answer 503.
    #[error("Redis at {target} is unavailable: {detail}; {fix}")]
    Unavailable {
        /// `host:port` of the server.
        target: String,
        detail: String,
        fix: &'static str,
    },
    /// Redis refused the credentials given in `redis.url`.
    #[error(
        "Redis at {target} refused the credentials: {detail}; check the password (and user) in redis.url, written redis(s)://:PASSWORD@HOST:PORT or redis(s)://USER:PASSWORD@HOST:PORT"
    )]
    Auth { target: String, detail: String },
    /// A setting cannot be used as it is.
    #[error("{key} cannot be used: {problem}; {fix}")]
    Config {
        key: &'static str,
        problem: String,
        fix: &'static str,
    },
    /// Redis answered a command with an error of its own.
    #[error(
        "Redis at {target} rejected {command}: {detail}; check that redis.key_prefix is used by this deployment alone and that the Redis user may run {command}"
    )]
    Command {
        target: String,
        command: String,
        detail: String,
    },
    /// A cached value is not the JSON the caller expects.
    #[error(
        "the cached value under `{key}` is not a valid {type_name}: {detail}; it was written by other code or an older version, so delete the key or let it expire"
    )]
    Decode {
        key: String,
        type_name: &'static str,
        detail: String,
    },
    /// A value could not be turned into JSON for the cache.
    #[error("the value for cache key `{key}` ({type_name}) cannot be written as JSON: {detail}")]
    Encode {
        key: String,
        type_name: &'static str,
        detail: String,
    },
}

impl SharedError {
    /// True when the failure is Redis being unreachable or slow, which callers report as 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SharedError::Unavailable { .. })
    }
}

/// Why a bus request got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// Nobody subscribed to the topic when the request was published, so nobody will answer.
    #[error(
        "no process serves bus topic `{topic}`; start the service that answers it, and check that both sides use the same redis.url and redis.key_prefix"
    )]
    NoResponder { topic: String },
    /// A responder received the request but no reply came back in time.
    #[error(
        "no reply on bus topic `{topic}` within {}; the responder may be stuck or overloaded, so retry later or raise bus.request_timeout",
        format_duration(*after)
    )]
    Timeout { topic: String, after: Duration },
    /// Publishing the request or listening for its reply failed.
    #[error(transparent)]
    Shared(#[from] SharedError),
}

impl BusError {
    /// True when the failure is Redis being unreachable or slow, which callers report as 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BusError::Shared(error) if error.is_unavailable())
    }
}
