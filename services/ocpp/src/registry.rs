//! The chargers connected to this node, and the commands waiting for each.
//!
//! Every connection gets an epoch, unique within the process. A new connection of a charger
//! replaces the old one: the old session is told to close, and only the newest may remove the
//! charger from the registry or release its directory entry, so an old connection that ends
//! late cannot undo the new one. The directory entry names `{node}#{epoch}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voltfleet_core::domain::ChargePointId;
use voltfleet_core::ocpp::commands::CommandError;
use voltfleet_core::ocpp::v16::Action;

/// A command on its way to a charger's session.
#[derive(Debug)]
pub struct Command {
    pub action: Action,
    pub payload: Value,
    /// When the caller stops waiting; the CALL's own timeout never runs past it.
    pub deadline: Instant,
    pub reply: oneshot::Sender<Result<Value, CommandError>>,
}

/// What the registry keeps of one session.
#[derive(Debug)]
struct Entry {
    epoch: u64,
    commands: mpsc::Sender<Command>,
    replaced: CancellationToken,
}

/// What a new session receives from the registry.
#[derive(Debug)]
pub struct Registration {
    pub epoch: u64,
    pub commands: mpsc::Receiver<Command>,
    /// Cancelled when a newer connection of the same charger takes over.
    pub replaced: CancellationToken,
}

#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<ChargePointId, Entry>>,
    next_epoch: AtomicU64,
}

impl Registry {
    /// Registers a new session of `charge_point`, telling any earlier one to close.
    pub fn register(&self, charge_point: &ChargePointId, queue: usize) -> Registration {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let (sender, commands) = mpsc::channel(queue.max(1));
        let replaced = CancellationToken::new();
        let previous = self.lock().insert(
            charge_point.clone(),
            Entry {
                epoch,
                commands: sender,
                replaced: replaced.clone(),
            },
        );
        if let Some(previous) = previous {
            previous.replaced.cancel();
        }
        Registration {
            epoch,
            commands,
            replaced,
        }
    }

    /// Removes the session of `epoch`; false when a newer one has taken its place.
    pub fn remove(&self, charge_point: &ChargePointId, epoch: u64) -> bool {
        let mut sessions = self.lock();
        match sessions.get(charge_point) {
            Some(entry) if entry.epoch == epoch => {
                sessions.remove(charge_point);
                true
            }
            _ => false,
        }
    }

    /// Tells the session of `charge_point` to close because another node took it over, unless
    /// it is the one that took over.
    pub fn replaced_elsewhere(&self, charge_point: &ChargePointId, keep_epoch: Option<u64>) {
        if let Some(entry) = self.lock().get(charge_point)
            && Some(entry.epoch) != keep_epoch
        {
            entry.replaced.cancel();
        }
    }

    /// Where to queue a command for `charge_point`, if it is connected here.
    pub fn commands(&self, charge_point: &ChargePointId) -> Option<mpsc::Sender<Command>> {
        self.lock()
            .get(charge_point)
            .map(|entry| entry.commands.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChargePointId, Entry>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_replaces_the_old_one() {
        let registry = Registry::default();
        let cp: ChargePointId = "CP-1".parse().expect("id");
        let first = registry.register(&cp, 4);
        let second = registry.register(&cp, 4);
        assert!(first.replaced.is_cancelled());
        assert!(!second.replaced.is_cancelled());
        assert!(
            !registry.remove(&cp, first.epoch),
            "the old session cannot remove the new"
        );
        assert!(registry.commands(&cp).is_some());
        assert!(registry.remove(&cp, second.epoch));
        assert!(registry.commands(&cp).is_none());
    }

    #[test]
    fn another_node_taking_over_closes_the_session_here() {
        let registry = Registry::default();
        let cp: ChargePointId = "CP-1".parse().expect("id");
        let session = registry.register(&cp, 4);
        registry.replaced_elsewhere(&cp, Some(session.epoch));
        assert!(
            !session.replaced.is_cancelled(),
            "its own claim does not close it"
        );
        registry.replaced_elsewhere(&cp, None);
        assert!(session.replaced.is_cancelled());
    }
}
