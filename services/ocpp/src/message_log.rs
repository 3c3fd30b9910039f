//! The last `ocpp.message_log` messages of each charger, for the Back Office.
//!
//! Sessions hand each frame (as it went over the socket) to one writer task without waiting:
//! the queue is bounded, and when it is full the message is dropped and counted, never the
//! charger slowed. The writer appends what has gathered in one statement and now and then
//! trims each charger's messages to the newest `ocpp.message_log`. Nothing here is a record
//! the central system relies on: the other tables are.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use voltfleet_core::storage::{Database, NewOcppMessage};

/// Messages that may wait for the writer; more are dropped.
const QUEUE: usize = 8192;
/// Most messages appended in one statement.
const BATCH: usize = 500;

/// Hands messages to the writer; cheap to clone. The writer ends once every clone is gone.
#[derive(Debug, Clone)]
pub struct MessageLog {
    queue: Option<mpsc::Sender<NewOcppMessage>>,
    dropped: Arc<AtomicU64>,
}

/// What a frame is, for the log.
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    pub message_type: &'static str,
    pub action: Option<&'a str>,
    pub message_id: Option<&'a str>,
}

impl MessageLog {
    /// `keep` is `ocpp.message_log`; 0 records nothing.
    pub fn start(db: Database, keep: u32, tasks: &TaskTracker) -> MessageLog {
        if keep == 0 {
            return MessageLog {
                queue: None,
                dropped: Arc::default(),
            };
        }
        let (queue, receiver) = mpsc::channel(QUEUE);
        tasks.spawn(run(db, keep, receiver));
        MessageLog {
            queue: Some(queue),
            dropped: Arc::default(),
        }
    }

    /// Records one frame of charger `charge_point_id`, `in` from it or `out` to it.
    pub fn record(
        &self,
        charge_point_id: i64,
        direction: &'static str,
        described: Described<'_>,
        body: &str,
    ) {
        let Some(queue) = &self.queue else {
            return;
        };
        let message = NewOcppMessage::new(
            charge_point_id,
            direction,
            described.message_type,
            described.action,
            described.message_id,
            body,
            Utc::now(),
        );
        if queue.try_send(message).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(10_000) {
                tracing::warn!(
                    dropped,
                    "The OCPP message log cannot keep up; messages are left out of it (the chargers are not slowed)."
                );
            }
        }
    }
}

async fn run(db: Database, keep: u32, mut receiver: mpsc::Receiver<NewOcppMessage>) {
    // Trim a charger once it has added a quarter of what it keeps, so a trim is rare and the
    // table holds at most 1.25 times the limit per charger.
    let trim_every = (keep / 4).max(1);
    let mut since_trim: HashMap<i64, u32> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        if let Err(err) = db.ocpp_messages().append(&batch).await {
            tracing::warn!(%err, messages = batch.len(), "OCPP messages could not be added to the message log.");
        }
        for message in batch.drain(..) {
            *since_trim.entry(message.charge_point_id).or_default() += 1;
        }
        let due: Vec<i64> = since_trim
            .iter()
            .filter(|(_, count)| **count >= trim_every)
            .map(|(id, _)| *id)
            .collect();
        for charge_point_id in due {
            since_trim.remove(&charge_point_id);
            if let Err(err) = db.ocpp_messages().trim(charge_point_id, keep).await {
                tracing::warn!(%err, charge_point_id, "The OCPP message log of a charger could not be trimmed.");
            }
        }
    }
}
