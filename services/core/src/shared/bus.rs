//! The bus between processes: publish/subscribe on topics, and request/reply on top of it.
//!
//! On Redis a topic is the channel `{redis.key_prefix}bus:{topic}`, so every process of one
//! deployment sees every message; in process, the same routing table delivers to the
//! subscriptions of this process. Delivery is at most once: a message published while nobody
//! listens, or while a subscriber's connection is being re-established, is gone.
//!
//! A request is a message carrying an id and a reply topic (`_reply.{id}`) that only the
//! requester listens on. One topic should have one responder (a per-node topic such as
//! `ocpp.node.{id}`); if several serve it, each answers and the first reply wins.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::pubsub::Hub;
use super::redis::RedisLink;
use super::{BusError, SharedError};
use crate::config::BusSettings;

/// How many messages may wait for a slow subscriber before newer ones are dropped for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// Topics under which requesters wait for their replies.
const REPLY_TOPIC_PREFIX: &str = "_reply.";

/// One message received on a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic as it was subscribed to (without the Redis key prefix).
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Publish/subscribe and request/reply between the processes of one deployment.
#[derive(Clone)]
pub struct Bus {
    transport: Transport,
    request_timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    InProcess(Arc<Router>),
    Redis(Hub),
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.transport {
            Transport::InProcess(_) => "in-process",
            Transport::Redis(_) => "redis",
        };
        f.debug_struct("Bus")
            .field("backend", &backend)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl Bus {
    /// A bus that reaches only the subscriptions of this process.
    pub fn in_process(settings: &BusSettings) -> Bus {
        Bus {
            transport: Transport::InProcess(Arc::new(Router::default())),
            request_timeout: settings.request_timeout,
        }
    }

    pub(crate) async fn redis(link: RedisLink, settings: &BusSettings) -> Result<Bus, SharedError> {
        Ok(Bus {
            transport: Transport::Redis(Hub::start(link).await?),
            request_timeout: settings.request_timeout,
        })
    }

    /// How long [`Bus::request`] waits for a reply when given no timeout (`bus.request_timeout`).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Sends `payload` to every current subscriber of `topic` and returns how many received it:
    /// subscriptions in process, subscribed processes (connections) on Redis.
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<usize, SharedError> {
        match &self.transport {
            Transport::InProcess(router) => Ok(router.deliver(topic, payload)),
            Transport::Redis(hub) => hub.publish(topic, payload).await,
        }
    }

    /// Starts receiving the messages published on `topic` from now on. On Redis the subscription
    /// is confirmed by the server before this returns, and survives reconnections.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, SharedError> {
        match &self.transport {
            Transport::InProcess(router) => Ok(Subscription::new(
                topic,
                Arc::clone(router),
                topic.to_owned(),
                None,
            )),
            Transport::Redis(hub) => hub.subscribe(topic).await,
        }
    }

    /// Sends a request on `topic` and waits for its reply, at most `timeout` (default
    /// `bus.request_timeout`). Fails at once with [`BusError::NoResponder`] when nobody
    /// serves the topic.
    pub async fn request(
        &self,
        topic: &str,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, BusError> {
        let after = timeout.unwrap_or(self.request_timeout);
        let id = Uuid::new_v4().simple().to_string();
        let reply_to = format!("{REPLY_TOPIC_PREFIX}{id}");
        // Listen before asking, so a fast reply cannot arrive before anyone waits for it.
        let mut inbox = self.subscribe(&reply_to).await?;
        let envelope = Envelope {
            id: id.clone(),
            reply_to: Some(reply_to),
        };
        if self.publish(topic, &envelope.wrap(payload)).await? == 0 {
            return Err(BusError::NoResponder {
                topic: topic.to_owned(),
            });
        }
        let reply = tokio::time::timeout(after, async {
            while let Some(message) = inbox.next().await {
                match Envelope::unwrap(&message.payload) {
                    Some((envelope, body)) if envelope.id == id => return Some(body.to_vec()),
                    _ => tracing::debug!(topic, "Ignored a stray message on a reply topic."),
                }
            }
            None
        })
        .await;
        match reply {
            Ok(Some(body)) => Ok(body),
            Ok(None) | Err(_) => Err(BusError::Timeout {
                topic: topic.to_owned(),
                after,
            }),
        }
    }

    /// Starts answering the requests sent on `topic`.
    pub async fn serve(&self, topic: &str) -> Result<Requests, SharedError> {
        Ok(Requests {
            subscription: self.subscribe(topic).await?,
            bus: self.clone(),
        })
    }
}

/// The messages published on one topic since [`Bus::subscribe`]; unsubscribes when dropped.
///
/// Read it with [`Subscription::next`] or as a [`Stream`]. A subscriber that falls more than
/// 1024 messages behind loses the newest ones (with a warning in the log) rather than making
/// the process grow without bound.
pub struct Subscription {
    topic: String,
    receiver: mpsc::Receiver<Message>,
    _membership: Membership,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        topic: &str,
        router: Arc<Router>,
        channel: String,
        hub: Option<Hub>,
    ) -> Subscription {
        let (id, receiver) = router.add(&channel, topic);
        Subscription {
            topic: topic.to_owned(),
            receiver,
            _membership: Membership {
                router,
                channel,
                id,
                hub,
            },
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message; waits until one arrives.
    pub async fn next(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.receiver.poll_recv(cx)
    }
}

/// A subscription's entry in the routing table, removed when the subscription is dropped.
struct Membership {
    router: Arc<Router>,
    channel: String,
    id: u64,
    hub: Option<Hub>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if self.router.remove(&self.channel, self.id)
            && let Some(hub) = &self.hub
        {
            hub.forget(&self.channel);
        }
    }
}

/// The requests arriving on one topic, from [`Bus::serve`].
pub struct Requests {
    subscription: Subscription,
    bus: Bus,
}

impl fmt::Debug for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requests")
            .field("topic", &self.subscription.topic)
            .finish_non_exhaustive()
    }
}

impl Requests {
    pub fn topic(&self) -> &str {
        &self.subscription.topic
    }

    /// The next request; waits until one arrives.
    pub async fn next(&mut self) -> Option<Request> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn parse(&self, message: Message) -> Option<Request> {
        let Some((envelope, body)) = Envelope::unwrap(&message.payload) else {
            tracing::warn!(
                topic = %message.topic,
                "Ignored a message on a served bus topic because it is not a request; publish requests with Bus::request."
            );
            return None;
        };
        let Some(reply_to) = envelope.reply_to else {
            tracing::warn!(topic = %message.topic, "Ignored a request without a reply topic.");
            return None;
        };
        Some(Request {
            payload: body.to_vec(),
            topic: message.topic,
            id: envelope.id,
            reply_to,
            bus: self.bus.clone(),
        })
    }
}

impl Stream for Requests {
    type Item = Request;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Request>> {
        loop {
            let Some(message) = ready!(Pin::new(&mut self.subscription).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            if let Some(request) = self.parse(message) {
                return Poll::Ready(Some(request));
            }
        }
    }
}

/// One request to answer with [`Request::reply`].
pub struct Request {
    pub topic: String,
    pub payload: Vec<u8>,
    id: String,
    reply_to: String,
    bus: Bus,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Sends the reply to the requester. A requester that has given up is not an error: its
    /// reply is dropped, with a debug log line.
    pub async fn reply(self, payload: &[u8]) -> Result<(), SharedError> {
        let envelope = Envelope {
            id: self.id,
            reply_to: None,
        };
        let receivers = self
            .bus
            .publish(&self.reply_to, &envelope.wrap(payload))
            .await?;
        if receivers == 0 {
            tracing::debug!(
                topic = %self.topic,
                "Dropped a reply because the requester stopped waiting for it."
            );
        }
        Ok(())
    }
}

/// The header of a request or reply on the wire: one JSON line, then the payload bytes as they
/// are, so binary payloads need no encoding.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
}

impl Envelope {
    fn wrap(&self, body: &[u8]) -> Vec<u8> {
        // Serializing a struct of strings cannot fail; an empty header would be rejected by
        // the reader anyway.
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        bytes
    }

    fn unwrap(bytes: &[u8]) -> Option<(Envelope, &[u8])> {
        let end = bytes.iter().position(|&byte| byte == b'\n')?;
        let envelope = serde_json::from_slice(&bytes[..end]).ok()?;
        Some((envelope, &bytes[end + 1..]))
    }
}

/// Who listens on which channel: the in-process bus delivers through it directly, the Redis
/// bus hands it what arrives on its pub/sub connection.
#[derive(Debug, Default)]
pub(crate) struct Router {
    routes: Mutex<Routes>,
}

#[derive(Debug, Default)]
struct Routes {
    next_id: u64,
    channels: HashMap<String, Route>,
}

#[derive(Debug)]
struct Route {
    topic: String,
    subscribers: HashMap<u64, mpsc::Sender<Message>>,
}

impl Router {
    fn lock(&self) -> MutexGuard<'_, Routes> {
        // Every method leaves the table consistent before it could panic.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, channel: &str, topic: &str) -> (u64, mpsc::Receiver<Message>) {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        let mut routes = self.lock();
        let id = routes.next_id;
        routes.next_id += 1;
        routes
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Route {
                topic: topic.to_owned(),
                subscribers: HashMap::new(),
            })
            .subscribers
            .insert(id, sender);
        (id, receiver)
    }

    /// Removes one subscriber; true when the channel has none left.
    fn remove(&self, channel: &str, id: u64) -> bool {
        let mut routes = self.lock();
        let Some(route) = routes.channels.get_mut(channel) else {
            return false;
        };
        route.subscribers.remove(&id);
        if route.subscribers.is_empty() {
            routes.channels.remove(channel);
            true
        } else {
            false
        }
    }

    pub(crate) fn contains(&self, channel: &str) -> bool {
        self.lock().channels.contains_key(channel)
    }

    pub(crate) fn channels(&self) -> Vec<String> {
        self.lock().channels.keys().cloned().collect()
    }

    /// Hands `payload` to every subscriber of `channel`; returns how many took it.
    pub(crate) fn deliver(&self, channel: &str, payload: &[u8]) -> usize {
        let routes = self.lock();
        let Some(route) = routes.channels.get(channel) else {
            return 0;
        };
        let mut delivered = 0;
        for sender in route.subscribers.values() {
            let message = Message {
                topic: route.topic.clone(),
                payload: payload.to_vec(),
            };
            match sender.try_send(message) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(
                    topic = %route.topic,
                    buffered = SUBSCRIBER_BUFFER,
                    "Dropped a bus message because a subscriber is not keeping up with its topic."
                ),
                // The subscription is being dropped; its membership removes it.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }
}
