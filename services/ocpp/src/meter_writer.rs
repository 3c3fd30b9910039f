//! Meter values written in groups: the largest stream of writes a central system has.
//!
//! A charger's MeterValues is acknowledged only once its samples are in the database. Sessions
//! hand their samples to one writer task; while it writes one group, the samples of every
//! session that arrives meanwhile gather into the next, so under load each database round
//! trip and commit carries many messages (up to `ocpp.meter_values_batch` rows) instead of
//! one. A few groups are written at once, on separate connections, so that the commit of one
//! overlaps the sending of the next. A group that fails is retried message by message, so one
//! charger's bad reference cannot fail the others.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;
use voltfleet_core::storage::{Database, NewMeterValue, StorageError};

use crate::metrics::OcppMetrics;

/// How many messages may wait for the writer before sessions wait to hand theirs over.
const QUEUE: usize = 4096;

struct Pending {
    rows: Vec<NewMeterValue>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Hands samples to the writer task; cheap to clone. The task ends once every clone is gone
/// and what was handed over is written.
#[derive(Debug, Clone)]
pub struct MeterWriter {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl MeterWriter {
    pub fn start(
        db: Database,
        metrics: OcppMetrics,
        max_rows: usize,
        concurrent_groups: usize,
        tasks: &TaskTracker,
    ) -> MeterWriter {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tasks.spawn(run(
            db,
            metrics,
            max_rows.max(1),
            concurrent_groups.max(1),
            receiver,
        ));
        MeterWriter { queue }
    }

    /// Stores `rows` (one message's samples); returns once they are committed.
    pub async fn write(&self, rows: Vec<NewMeterValue>) -> Result<(), StorageError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, written) = oneshot::channel();
        let stopped = || StorageError::Other("the meter value writer has stopped".into());
        self.queue
            .send(Pending { rows, done })
            .await
            .map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

async fn run(
    db: Database,
    metrics: OcppMetrics,
    max_rows: usize,
    concurrent_groups: usize,
    mut receiver: mpsc::Receiver<Pending>,
) {
    let mut writing = JoinSet::new();
    loop {
        if writing.len() >= concurrent_groups {
            writing.join_next().await;
        }
        let Some(first) = receiver.recv().await else {
            break;
        };
        let mut rows = first.rows.len();
        let mut group = vec![first];
        while rows < max_rows {
            match receiver.try_recv() {
                Ok(next) => {
                    rows += next.rows.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let (db, metrics) = (db.clone(), metrics.clone());
        writing.spawn(async move { write_group(&db, &metrics, group).await });
    }
    while writing.join_next().await.is_some() {}
}

async fn write_group(db: &Database, metrics: &OcppMetrics, group: Vec<Pending>) {
    let all: Vec<NewMeterValue> = group.iter().flat_map(|p| p.rows.iter().cloned()).collect();
    match db.transactions().add_meter_values(&all).await {
        Ok(_) => {
            metrics.meter_samples_stored.inc_by(all.len() as u64);
            metrics.meter_batch_rows.observe(all.len() as f64);
            for pending in group {
                let _ = pending.done.send(Ok(()));
            }
        }
        Err(err) if group.len() == 1 => {
            if let Some(pending) = group.into_iter().next() {
                let _ = pending.done.send(Err(err));
            }
        }
        Err(_) => {
            for pending in group {
                let result = db.transactions().add_meter_values(&pending.rows).await;
                if result.is_ok() {
                    metrics
                        .meter_samples_stored
                        .inc_by(pending.rows.len() as u64);
                }
                let _ = pending.done.send(result);
            }
        }
    }
}
