//! The Redis side of the bus: one dedicated pub/sub connection per [`Bus`](super::Bus), owned by
//! a background task that subscribes and unsubscribes channels as subscriptions come and go,
//! hands incoming messages to the [`Router`], and — when the connection is lost — reconnects
//! with backoff and subscribes every channel again, so subscriptions outlive a Redis restart.
//!
//! The task stops when the last bus handle and subscription are dropped. It PINGs the server
//! every few seconds, so a connection that silently died (a failover without a reset) is noticed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use humantime::format_duration;
use redis::aio::{PubSub, PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use super::SharedError;
use super::bus::{Router, Subscription};
use super::redis::RedisLink;

/// How often an idle pub/sub connection is checked with PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Reconnection attempts wait from the first to the second, doubling.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// A handle on the pub/sub task of one bus.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    link: RedisLink,
    router: Arc<Router>,
    control: mpsc::UnboundedSender<Control>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("link", &self.inner.link)
            .finish_non_exhaustive()
    }
}

enum Control {
    Subscribe {
        channel: String,
        done: oneshot::Sender<Result<(), SharedError>>,
    },
    Unsubscribe {
        channel: String,
    },
}

impl Hub {
    /// Opens the pub/sub connection now, so a server that refuses it fails the start, and
    /// starts the task that owns it.
    pub(crate) async fn start(link: RedisLink) -> Result<Hub, SharedError> {
        let connection = open(&link).await?;
        let router = Arc::new(Router::default());
        let (control, requests) = mpsc::unbounded_channel();
        tokio::spawn(run(link.clone(), Arc::clone(&router), requests, connection));
        Ok(Hub {
            inner: Arc::new(HubInner {
                link,
                router,
                control,
            }),
        })
    }

    pub(crate) async fn publish(&self, topic: &str, payload: &[u8]) -> Result<usize, SharedError> {
        let link = &self.inner.link;
        let channel = link.key("bus", topic);
        let mut connection = link.connection();
        link.within(
            "PUBLISH",
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async::<usize>(&mut connection),
        )
        .await
    }

    /// Subscribes `topic`, returning once Redis has confirmed it.
    pub(crate) async fn subscribe(&self, topic: &str) -> Result<Subscription, SharedError> {
        let link = &self.inner.link;
        let channel = link.key("bus", topic);
        // Routed before the server confirms, so nothing published right after is missed; on
        // failure dropping the subscription removes the route again.
        let subscription = Subscription::new(
            topic,
            Arc::clone(&self.inner.router),
            channel.clone(),
            Some(self.clone()),
        );
        let (done, confirmed) = oneshot::channel();
        if self
            .inner
            .control
            .send(Control::Subscribe { channel, done })
            .is_err()
        {
            return Err(unavailable(
                link,
                "the bus connection task has stopped".into(),
            ));
        }
        // The task may be in the middle of reconnecting before it gets to this request.
        let limit = link.connect_timeout() + link.response_timeout() * 2;
        match tokio::time::timeout(limit, confirmed).await {
            Ok(Ok(Ok(()))) => Ok(subscription),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => Err(unavailable(
                link,
                "the bus connection task has stopped".into(),
            )),
            Err(_) => Err(unavailable(
                link,
                format!(
                    "SUBSCRIBE was not confirmed within {}",
                    format_duration(limit)
                ),
            )),
        }
    }

    /// Called when the last subscription of `channel` is dropped.
    pub(crate) fn forget(&self, channel: &str) {
        // A stopped task has no subscriptions left to remove.
        let _stopped = self.inner.control.send(Control::Unsubscribe {
            channel: channel.to_owned(),
        });
    }
}

fn unavailable(link: &RedisLink, detail: String) -> SharedError {
    SharedError::Unavailable {
        target: link.target().to_owned(),
        detail,
        fix: "the bus reconnects by itself, so retry later; if it lasts, check that Redis is running and reachable from this host",
    }
}

async fn open(link: &RedisLink) -> Result<PubSub, SharedError> {
    let limit = link.connect_timeout() + link.response_timeout();
    match tokio::time::timeout(limit, link.client().get_async_pubsub()).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(error)) => Err(link.failure("opening the pub/sub connection", &error)),
        Err(_) => Err(unavailable(
            link,
            format!(
                "the pub/sub connection was not open within {}",
                format_duration(limit)
            ),
        )),
    }
}

/// Why [`serve`] returned.
enum Ended {
    /// Every handle is gone: the task stops.
    Closed,
    /// The connection failed: the task reconnects.
    Lost(SharedError),
}

async fn run(
    link: RedisLink,
    router: Arc<Router>,
    mut control: mpsc::UnboundedReceiver<Control>,
    first: PubSub,
) {
    let mut connection = Some(first);
    let mut failures: u32 = 0;
    let mut reconnecting = false;
    loop {
        let attempt = match connection.take() {
            Some(pubsub) => Ok(pubsub),
            None => open(&link).await,
        };
        let channels = router.channels();
        let ready = match attempt {
            Ok(pubsub) => {
                let (mut sink, stream) = pubsub.split();
                let subscribed = if channels.is_empty() {
                    Ok(())
                } else {
                    link.within("SUBSCRIBE", sink.subscribe(&channels)).await
                };
                subscribed.map(|()| (sink, stream))
            }
            Err(error) => Err(error),
        };
        let (mut sink, mut stream) = match ready {
            Ok(parts) => parts,
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(
                        server = link.display_url(),
                        error = %error,
                        "Could not reconnect the bus to Redis; retrying with backoff."
                    );
                } else {
                    tracing::debug!(
                        server = link.display_url(),
                        error = %error,
                        attempts = failures,
                        "Still cannot reconnect the bus to Redis."
                    );
                }
                let delay = BACKOFF
                    .0
                    .saturating_mul(2u32.saturating_pow(failures - 1))
                    .min(BACKOFF.1);
                if !wait_disconnected(&link, &mut control, delay).await {
                    return;
                }
                continue;
            }
        };
        if reconnecting {
            tracing::info!(
                server = link.display_url(),
                channels = channels.len(),
                attempts = failures + 1,
                "Reconnected the bus to Redis and subscribed its channels again."
            );
        }
        failures = 0;
        match serve(&link, &router, &mut control, &mut sink, &mut stream).await {
            Ended::Closed => return,
            Ended::Lost(error) => {
                reconnecting = true;
                tracing::warn!(
                    server = link.display_url(),
                    error = %error,
                    "Lost the bus connection to Redis; reconnecting. Messages published meanwhile are not delivered."
                );
            }
        }
    }
}

/// Waits `delay` while no connection exists, turning subscription requests away. Returns false
/// when every handle is gone.
async fn wait_disconnected(
    link: &RedisLink,
    control: &mut mpsc::UnboundedReceiver<Control>,
    delay: Duration,
) -> bool {
    let deadline = tokio::time::sleep(delay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return true,
            request = control.recv() => match request {
                None => return false,
                Some(Control::Subscribe { done, .. }) => {
                    let error = unavailable(link, "the pub/sub connection is down and being re-established".into());
                    let _gave_up = done.send(Err(error));
                }
                // The next connection subscribes only the channels still routed.
                Some(Control::Unsubscribe { .. }) => {}
            },
        }
    }
}

/// Runs one connection until it fails or every handle is gone.
async fn serve(
    link: &RedisLink,
    router: &Router,
    control: &mut mpsc::UnboundedReceiver<Control>,
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
) -> Ended {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => {
                    router.deliver(message.get_channel_name(), message.get_payload_bytes());
                }
                None => return Ended::Lost(unavailable(link, "the server closed the pub/sub connection".into())),
            },
            request = control.recv() => match request {
                None => return Ended::Closed,
                Some(Control::Subscribe { channel, done }) => {
                    if !router.contains(&channel) {
                        // The requester gave up and dropped its subscription already.
                        let _gave_up = done.send(Ok(()));
                        continue;
                    }
                    let result = link.within("SUBSCRIBE", sink.subscribe(&channel)).await;
                    let _gave_up = done.send(result.clone());
                    if let Err(error) = result {
                        return Ended::Lost(error);
                    }
                }
                Some(Control::Unsubscribe { channel }) => {
                    // A new subscription may have arrived since the last one was dropped.
                    if router.contains(&channel) {
                        continue;
                    }
                    if let Err(error) = link.within("UNSUBSCRIBE", sink.unsubscribe(&channel)).await {
                        return Ended::Lost(error);
                    }
                }
            },
            _ = ping.tick() => {
                if let Err(error) = link.within("PING", sink.ping::<redis::Value>()).await {
                    return Ended::Lost(error);
                }
            }
        }
    }
}
