//! One charger's connection, from the upgrade until it closes.
//!
//! A single task owns the socket and does everything in turn: it handles each CALL from the
//! charger to the end (the answer goes out only after the database has what it reported),
//! sends queued commands one at a time (OCPP-J allows one outstanding CALL per direction),
//! pings the charger, and keeps the fleet-wide directory entry naming this node fresh. It
//! closes the socket when the process stops (1001, so the charger reconnects elsewhere), when a
//! newer connection of the charger takes over, or when the charger goes silent.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use chrono::Utc;
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_util::sync::CancellationToken;
use voltfleet_core::domain::{ChargePointId, RegistrationStatus};
use voltfleet_core::ocpp::commands::{
    CLAIMS_TOPIC, CommandError, SessionClaim, session_entry, session_owner,
};
use voltfleet_core::ocpp::events::ChargerEvent;
use voltfleet_core::ocpp::v16::Action;
use voltfleet_core::storage::ChargePoint;

use crate::Central;
use crate::message_log::Described;
use crate::protocol::OcppVersion;
use crate::registry::Command;
use crate::rpc::{CallError, ErrorCode, Frame};
use crate::v16;
use crate::v16::schemas::Direction;

/// What handlers know about the charger on the other end.
#[derive(Debug, Clone)]
pub struct Charger {
    /// The database id.
    pub id: i64,
    pub identity: ChargePointId,
    /// As last answered in BootNotification (or stored, until the charger boots).
    pub registration: RegistrationStatus,
    /// Negotiated at the handshake.
    pub version: OcppVersion,
    /// Transactions known to be this charger's, so that MeterValues, sent every few seconds
    /// during a session, need no lookup to be attached to theirs.
    pub transactions: KnownTransactions,
}

/// The last few transaction ids found to belong to a charger. A transaction never changes
/// charger, so a remembered id stays true; only the most recent are kept (a charger has at
/// most one running per connector).
#[derive(Debug, Clone, Default)]
pub struct KnownTransactions {
    ids: std::collections::VecDeque<i64>,
}

impl KnownTransactions {
    const KEPT: usize = 8;

    pub fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }

    pub fn remember(&mut self, id: i64) {
        if self.contains(id) {
            return;
        }
        if self.ids.len() == Self::KEPT {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }
}

/// A CALL sent to the charger, waiting for its answer.
#[derive(Debug)]
struct Outstanding {
    id: String,
    action: Action,
    request: Value,
    sent_at: Instant,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<Value, CommandError>>,
}

/// Why the loop ended, and what to tell the charger.
enum Ending {
    /// The charger closed, or the connection broke.
    Gone(String),
    Close(u16, String),
}

struct Session {
    central: Arc<Central>,
    socket: WebSocket,
    charger: Charger,
    owner: String,
    outstanding: Option<Outstanding>,
    bucket: TokenBucket,
    last_heard: Instant,
    /// The action of the charger's CALL being answered, for the message log.
    answering: Option<String>,
}

pub async fn run(
    central: Arc<Central>,
    socket: WebSocket,
    record: ChargePoint,
    identity: ChargePointId,
    version: OcppVersion,
) {
    let settings = central.settings().clone();
    let registration = central
        .registry
        .register(&identity, settings.command_queue as usize);
    let owner = session_owner(&central.node, registration.epoch);
    let entry = session_entry(&identity);
    if let Err(err) = central
        .ctx
        .shared
        .directory
        .claim(&entry, &owner, settings.session_ttl)
        .await
    {
        tracing::warn!(charge_point = %identity, error = %err, "Could not record which node holds the charger; commands reach it once the directory is back.");
    }
    announce_claim(&central, &identity, &owner).await;
    central.metrics.connected.inc();
    tracing::info!(charge_point = %identity, protocol = version.subprotocol(), epoch = registration.epoch, "Charger connected.");
    central
        .publish(ChargerEvent::Connected {
            charge_point: identity.clone(),
            node: central.node.clone(),
            protocol: version.subprotocol().to_owned(),
            at: Utc::now(),
        })
        .await;

    let mut session = Session {
        answering: None,
        bucket: TokenBucket::new(settings.rate_limit, settings.rate_burst),
        central: Arc::clone(&central),
        socket,
        charger: Charger {
            id: record.id,
            identity: identity.clone(),
            registration: record.registration_status,
            version,
            transactions: KnownTransactions::default(),
        },
        owner: owner.clone(),
        outstanding: None,
        last_heard: Instant::now(),
    };
    let ending = session
        .serve(registration.commands, registration.replaced)
        .await;
    let Session {
        mut socket,
        outstanding,
        ..
    } = session;
    if let Some(call) = outstanding {
        let _ = call.reply.send(Err(CommandError::Offline {
            charge_point: identity.to_string(),
        }));
    }
    let reason = match ending {
        Ending::Gone(reason) => reason,
        Ending::Close(code, reason) => {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.clone().into(),
                })))
                .await;
            reason
        }
    };
    drop(socket);

    central.metrics.connected.dec();
    if central.registry.remove(&identity, registration.epoch)
        && let Err(err) = central.ctx.shared.directory.release(&entry, &owner).await
    {
        tracing::warn!(charge_point = %identity, error = %err, "Could not clear the charger's directory entry; it expires by itself.");
    }
    tracing::info!(charge_point = %identity, reason, "Charger disconnected.");
    central
        .publish(ChargerEvent::Disconnected {
            charge_point: identity,
            node: central.node.clone(),
            at: Utc::now(),
        })
        .await;
}

async fn announce_claim(central: &Central, identity: &ChargePointId, owner: &str) {
    let claim = SessionClaim {
        charge_point: identity.clone(),
        owner: owner.to_owned(),
    };
    let body = serde_json::to_vec(&claim).unwrap_or_default();
    if let Err(err) = central.ctx.shared.bus.publish(CLAIMS_TOPIC, &body).await {
        tracing::warn!(charge_point = %identity, error = %err, "Could not tell the other nodes that this node now holds the charger.");
    }
}

impl Session {
    async fn serve(
        &mut self,
        mut commands: tokio::sync::mpsc::Receiver<Command>,
        replaced: CancellationToken,
    ) -> Ending {
        let settings = self.central.settings().clone();
        let start = Instant::now();
        let mut ping = interval_at(start + settings.ping_interval, settings.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let refresh_every = (settings.session_ttl / 3).max(Duration::from_secs(1));
        let mut refresh = interval_at(start + refresh_every, refresh_every);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown = self.central.shutdown.clone();
        loop {
            let call_deadline = self.outstanding.as_ref().map(|call| call.deadline);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    return Ending::Close(close_code::AWAY, "the central system is restarting; reconnect".into());
                }
                () = replaced.cancelled() => {
                    return Ending::Close(close_code::NORMAL, "replaced by a newer connection of this charger".into());
                }
                incoming = self.socket.recv() => {
                    let message = match incoming {
                        None => return Ending::Gone("the connection closed".into()),
                        Some(Err(err)) => return self.broken(err),
                        Some(Ok(message)) => message,
                    };
                    self.last_heard = Instant::now();
                    if let Some(ending) = self.on_message(message).await {
                        return ending;
                    }
                }
                Some(command) = commands.recv(), if self.outstanding.is_none() => {
                    if let Some(ending) = self.send_call(command).await {
                        return ending;
                    }
                }
                () = sleep_until(call_deadline.unwrap_or(start)), if call_deadline.is_some() => {
                    self.call_timed_out();
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > settings.idle_timeout {
                        return Ending::Close(close_code::AWAY, "nothing heard from the charger, not even an answer to a ping".into());
                    }
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Ending::Gone("the connection broke while pinging".into());
                    }
                }
                _ = refresh.tick() => {
                    if let Some(ending) = self.refresh_claim().await {
                        return ending;
                    }
                }
            }
        }
    }

    fn broken(&self, err: axum::Error) -> Ending {
        let text = err.to_string();
        // tungstenite reports a message over max_message_size as a capacity error.
        if text.contains("Space limit exceeded")
            || text.contains("too long")
            || text.contains("Message too long")
        {
            tracing::warn!(charge_point = %self.charger.identity, error = %text, "A charger sent a message larger than ocpp.max_message_size.");
            self.central
                .metrics
                .message("received", "unknown", "too_large");
            return Ending::Close(
                close_code::SIZE,
                format!(
                    "message larger than {} bytes",
                    self.central.settings().max_message_size
                ),
            );
        }
        Ending::Gone(format!("the connection failed: {text}"))
    }

    async fn on_message(&mut self, message: Message) -> Option<Ending> {
        match message {
            Message::Text(text) => {
                self.throttle().await;
                self.on_text(text.as_str()).await
            }
            Message::Binary(_) => {
                self.throttle().await;
                self.central
                    .metrics
                    .message("received", "unknown", "malformed");
                tracing::warn!(charge_point = %self.charger.identity, "A charger sent a binary WebSocket message; OCPP-J uses text only.");
                let error = CallError::new(
                    ErrorCode::FormationViolation,
                    "OCPP-J messages are WebSocket text messages, not binary",
                );
                self.send(Frame::error(crate::rpc::frame::UNKNOWN_MESSAGE_ID, error))
                    .await
            }
            Message::Close(_) => Some(Ending::Gone("the charger closed the connection".into())),
            Message::Ping(_) | Message::Pong(_) => None,
        }
    }

    /// Waits when the charger sends faster than `ocpp.rate_limit`: reading slows down, so a
    /// flood backs up in the charger's own socket instead of this process.
    async fn throttle(&mut self) {
        let wait = self.bucket.take(Instant::now());
        if !wait.is_zero() {
            self.central.metrics.throttled.inc();
            tokio::time::sleep(wait).await;
        }
    }

    /// Hands a frame from the charger to the message log.
    fn log_incoming(&self, parsed: &Result<Frame, crate::rpc::frame::Malformed>, text: &str) {
        let answered = |id: &str| {
            self.outstanding
                .as_ref()
                .filter(|call| call.id == id)
                .map(|call| call.action.as_str())
        };
        let described = match parsed {
            Err(_) => Described {
                message_type: "invalid",
                action: None,
                message_id: None,
            },
            Ok(Frame::Call { id, action, .. }) => Described {
                message_type: "CALL",
                action: Some(action),
                message_id: Some(id),
            },
            Ok(Frame::CallResult { id, .. }) => Described {
                message_type: "CALLRESULT",
                action: answered(id),
                message_id: Some(id),
            },
            Ok(Frame::CallError { id, .. }) => Described {
                message_type: "CALLERROR",
                action: answered(id),
                message_id: Some(id),
            },
        };
        self.central
            .messages
            .record(self.charger.id, "in", described, text);
    }

    async fn on_text(&mut self, text: &str) -> Option<Ending> {
        let parsed = Frame::parse(text);
        self.log_incoming(&parsed, text);
        match parsed {
            Err(malformed) => {
                self.central
                    .metrics
                    .message("received", "unknown", "malformed");
                tracing::warn!(charge_point = %self.charger.identity, problem = %malformed.problem, "A charger sent a malformed OCPP-J message.");
                match malformed.answer {
                    Some((id, error)) => self.send(Frame::error(id, error)).await,
                    None => None,
                }
            }
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => {
                let label = v16::action_label(&action);
                self.answering = Some(action.clone());
                let answer =
                    v16::handle_call(&self.central, &mut self.charger, &action, payload).await;
                let frame = match answer {
                    Ok(payload) => {
                        self.central.metrics.message("received", label, "ok");
                        Frame::CallResult { id, payload }
                    }
                    Err(error) => {
                        self.central
                            .metrics
                            .message("received", label, error.code.as_str());
                        tracing::info!(charge_point = %self.charger.identity, action, error = %error, "Answered a charger's CALL with a CALLERROR.");
                        Frame::error(id, error)
                    }
                };
                let ending = self.send(frame).await;
                self.answering = None;
                ending
            }
            Ok(Frame::CallResult { id, payload }) => {
                self.on_answer(&id, Ok(payload)).await;
                None
            }
            Ok(Frame::CallError {
                id,
                code,
                description,
                ..
            }) => {
                self.on_answer(&id, Err((code, description))).await;
                None
            }
        }
    }

    async fn send(&mut self, frame: Frame) -> Option<Ending> {
        let text = frame.to_text();
        let described = match &frame {
            Frame::Call { id, action, .. } => Described {
                message_type: "CALL",
                action: Some(action),
                message_id: Some(id),
            },
            Frame::CallResult { id, .. } => Described {
                message_type: "CALLRESULT",
                action: self.answering.as_deref(),
                message_id: Some(id),
            },
            Frame::CallError { id, .. } => Described {
                message_type: "CALLERROR",
                action: self.answering.as_deref(),
                message_id: Some(id),
            },
        };
        self.central
            .messages
            .record(self.charger.id, "out", described, &text);
        match self.socket.send(Message::Text(text.into())).await {
            Ok(()) => None,
            Err(err) => Some(Ending::Gone(format!(
                "the connection failed while sending: {err}"
            ))),
        }
    }

    async fn send_call(&mut self, command: Command) -> Option<Ending> {
        let now = Instant::now();
        if command.deadline <= now {
            let _ = command.reply.send(Err(self.timeout(command.action)));
            return None;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let frame = Frame::Call {
            id: id.clone(),
            action: command.action.as_str().to_owned(),
            payload: command.payload.clone(),
        };
        let deadline = command
            .deadline
            .min(now + self.central.settings().call_timeout);
        self.outstanding = Some(Outstanding {
            id,
            action: command.action,
            request: command.payload,
            sent_at: now,
            deadline,
            reply: command.reply,
        });
        self.central
            .metrics
            .message("sent", command.action.as_str(), "ok");
        self.send(frame).await
    }

    fn timeout(&self, action: Action) -> CommandError {
        CommandError::Timeout {
            charge_point: self.charger.identity.to_string(),
            action: action.to_string(),
            seconds: self.central.settings().call_timeout.as_secs(),
        }
    }

    fn call_timed_out(&mut self) {
        if let Some(call) = self.outstanding.take() {
            self.observe(&call, "timeout");
            tracing::warn!(charge_point = %self.charger.identity, action = %call.action, "A charger did not answer a CALL in time.");
            let _ = call.reply.send(Err(self.timeout(call.action)));
        }
    }

    fn observe(&self, call: &Outstanding, outcome: &str) {
        self.central
            .metrics
            .call_duration
            .with_label_values(&[call.action.as_str(), outcome])
            .observe(call.sent_at.elapsed().as_secs_f64());
    }

    async fn on_answer(&mut self, id: &str, answer: Result<Value, (String, String)>) {
        let Some(call) = self.outstanding.take_if(|call| call.id == id) else {
            self.central
                .metrics
                .message("received", "unknown", "unexpected_answer");
            tracing::warn!(charge_point = %self.charger.identity, message_id = id, "A charger answered a CALL that is not outstanding (a late answer after a timeout?); ignored.");
            return;
        };
        let charge_point = self.charger.identity.to_string();
        let action = call.action.to_string();
        let result = match answer {
            Ok(payload) => {
                match self
                    .central
                    .schemas
                    .check(call.action, Direction::Response, &payload)
                {
                    Ok(()) => {
                        self.observe(&call, "answered");
                        v16::after_answer(
                            &self.central,
                            &self.charger,
                            call.action,
                            &call.request,
                            &payload,
                        )
                        .await;
                        Ok(payload)
                    }
                    Err(problem) => {
                        self.observe(&call, "malformed");
                        tracing::warn!(charge_point, action, problem = %problem, "A charger's answer does not conform to the OCPP schema.");
                        Err(CommandError::BadAnswer {
                            charge_point,
                            action,
                            problem: problem.description,
                        })
                    }
                }
            }
            Err((code, description)) => {
                self.observe(&call, "error");
                if ErrorCode::from_wire(&code).is_none() {
                    tracing::warn!(
                        charge_point,
                        action,
                        code,
                        "A charger answered with an error code that OCPP 1.6 does not define."
                    );
                }
                Err(CommandError::Refused {
                    charge_point,
                    action,
                    code,
                    description,
                })
            }
        };
        let _ = call.reply.send(result);
    }

    /// Keeps the directory entry alive; finds out when another node has taken the charger.
    async fn refresh_claim(&mut self) -> Option<Ending> {
        let directory = &self.central.ctx.shared.directory;
        let entry = session_entry(&self.charger.identity);
        let ttl = self.central.settings().session_ttl;
        match directory.refresh(&entry, &self.owner, ttl).await {
            Ok(true) => None,
            Ok(false) => match directory.owner(&entry).await {
                Ok(Some(other)) if other != self.owner => Some(Ending::Close(
                    close_code::NORMAL,
                    "replaced by a newer connection of this charger".into(),
                )),
                // The entry expired (Redis was unreachable for a while): claim it again.
                Ok(_) => {
                    if let Err(err) = directory.claim(&entry, &self.owner, ttl).await {
                        tracing::warn!(charge_point = %self.charger.identity, error = %err, "Could not renew the charger's directory entry.");
                    }
                    None
                }
                Err(err) => {
                    tracing::warn!(charge_point = %self.charger.identity, error = %err, "Could not check the charger's directory entry.");
                    None
                }
            },
            Err(err) => {
                tracing::warn!(charge_point = %self.charger.identity, error = %err, "Could not refresh the charger's directory entry.");
                None
            }
        }
    }
}

/// A token bucket: `rate` messages a second on average, `burst` at once.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            updated: Instant::now(),
        }
    }

    /// Takes one token; returns how long to wait before the message may be handled.
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_transactions_keep_the_most_recent() {
        let mut known = KnownTransactions::default();
        for id in 1..=10 {
            known.remember(id);
        }
        known.remember(10);
        assert!(!known.contains(2));
        assert!((3..=10).all(|id| known.contains(id)));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        bucket.updated = start;
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Duration::ZERO);
        }
        let wait = bucket.take(start);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // After a second of quiet the burst is back, but not more than the burst.
        let later = start + Duration::from_secs(5);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Duration::ZERO);
        }
        assert!(bucket.take(later) > Duration::ZERO);
    }
}
