//! Passive health: a peer that fails real requests is taken out of its pool for a while, with the
//! meaning NGINX gives `max_fails` and `fail_timeout`.
//!
//! `max_fails` failures within `fail_timeout` eject the peer for `fail_timeout`. When that time is
//! up, one request is let through as a probe while the others keep avoiding the peer: the
//! probe's success brings the peer back, a failure ejects it for another `fail_timeout`. So a dead
//! peer costs one request per `fail_timeout`, not a burst of them every time its ejection ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The pool-wide rule for ejecting peers.
#[derive(Debug, Clone, Copy)]
pub(super) struct EjectionPolicy {
    /// 0 disables ejection.
    pub(super) max_fails: u32,
    pub(super) fail_timeout: Duration,
    /// The origin of the instants kept in atomics, shared by the pool's peers.
    pub(super) epoch: Instant,
}

/// What a report changed, for the pool to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    Ejected,
    Restored,
}

/// One peer's passive-health state.
///
/// Picking a peer only reads `state`, so requests never queue on a lock to learn whether a peer
/// may be used; the lock guards the failure count, which only failures touch.
#[derive(Debug)]
pub(super) struct PassiveHealth {
    policy: EjectionPolicy,
    /// [`IN_SERVICE`], or an ejection packed by [`PassiveHealth::pack`].
    state: AtomicU64,
    window: Mutex<FailureWindow>,
}

/// Failures counted since `started`; the count starts over once `fail_timeout` has passed.
#[derive(Debug)]
struct FailureWindow {
    started: Instant,
    failures: u32,
}

const IN_SERVICE: u64 = 0;
/// Set while a probe is out: only then does a success bring the peer back, so a slow request that
/// was sent before the ejection cannot undo it.
const PROBING: u64 = 1;

impl PassiveHealth {
    pub(super) fn new(policy: EjectionPolicy) -> PassiveHealth {
        PassiveHealth {
            policy,
            state: AtomicU64::new(IN_SERVICE),
            window: Mutex::new(FailureWindow {
                started: policy.epoch,
                failures: 0,
            }),
        }
    }

    /// Whether the peer may be considered for a request at `now`: in service, or ejected long
    /// enough that a probe is due. The chosen peer must still be [`claim`](Self::claim)ed.
    pub(super) fn admits(&self, now: Instant) -> bool {
        match self.state.load(Ordering::Acquire) {
            IN_SERVICE => true,
            ejected => now >= self.ejection_end(ejected),
        }
    }

    /// Takes the peer for one request. False when another request has just taken the probe; the
    /// peer then no longer [`admits`](Self::admits) anyone until the probe's ejection ends.
    pub(super) fn claim(&self, now: Instant) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state == IN_SERVICE {
            return true;
        }
        if now < self.ejection_end(state) {
            return false;
        }
        let probing = self.pack(now + self.policy.fail_timeout) | PROBING;
        self.state
            .compare_exchange(state, probing, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(super) fn is_ejected(&self) -> bool {
        self.state.load(Ordering::Acquire) != IN_SERVICE
    }

    pub(super) fn report_failure(&self, now: Instant) -> Option<Transition> {
        if self.policy.max_fails == 0 {
            return None;
        }
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_ejected() {
            // The probe failed, or a request sent before the ejection did: either way the peer is
            // still failing, so its time out starts again.
            self.state
                .store(self.pack(now + self.policy.fail_timeout), Ordering::Release);
            return None;
        }
        if window.failures == 0
            || now.saturating_duration_since(window.started) >= self.policy.fail_timeout
        {
            window.started = now;
            window.failures = 0;
        }
        window.failures += 1;
        if window.failures < self.policy.max_fails {
            return None;
        }
        window.failures = 0;
        self.state
            .store(self.pack(now + self.policy.fail_timeout), Ordering::Release);
        Some(Transition::Ejected)
    }

    pub(super) fn report_success(&self) -> Option<Transition> {
        let state = self.state.load(Ordering::Acquire);
        if state & PROBING == 0 {
            return None;
        }
        self.state
            .compare_exchange(state, IN_SERVICE, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Transition::Restored)
    }

    /// Packs the end of an ejection into the state word: nanoseconds since the epoch, shifted to
    /// leave room for [`PROBING`], and never [`IN_SERVICE`].
    fn pack(&self, end: Instant) -> u64 {
        let nanos = end.saturating_duration_since(self.policy.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).min(u64::MAX >> 2);
        (nanos + 1) << 1
    }

    fn ejection_end(&self, state: u64) -> Instant {
        self.policy.epoch + Duration::from_nanos((state >> 1) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL_TIMEOUT: Duration = Duration::from_secs(10);

    fn peer(max_fails: u32) -> (PassiveHealth, Instant) {
        let epoch = Instant::now();
        let policy = EjectionPolicy {
            max_fails,
            fail_timeout: FAIL_TIMEOUT,
            epoch,
        };
        (PassiveHealth::new(policy), epoch)
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn max_fails_within_fail_timeout_eject_for_fail_timeout() {
        let (peer, t0) = peer(3);
        assert_eq!(peer.report_failure(t0), None);
        assert_eq!(peer.report_failure(t0 + secs(4)), None);
        assert!(peer.admits(t0 + secs(4)));
        assert_eq!(peer.report_failure(t0 + secs(9)), Some(Transition::Ejected));
        assert!(peer.is_ejected());
        assert!(!peer.admits(t0 + secs(9)));
        assert!(!peer.admits(t0 + secs(18)));
        assert!(
            peer.admits(t0 + secs(19)),
            "the ejection lasts fail_timeout"
        );
    }

    #[test]
    fn failures_spread_wider_than_fail_timeout_do_not_eject() {
        let (peer, t0) = peer(2);
        assert_eq!(peer.report_failure(t0), None);
        assert_eq!(peer.report_failure(t0 + secs(10)), None);
        assert_eq!(peer.report_failure(t0 + secs(21)), None);
        assert!(!peer.is_ejected());
        assert_eq!(
            peer.report_failure(t0 + secs(22)),
            Some(Transition::Ejected)
        );
    }

    #[test]
    fn one_probe_after_fail_timeout_and_its_success_restores() {
        let (peer, t0) = peer(1);
        assert_eq!(peer.report_failure(t0), Some(Transition::Ejected));
        let due = t0 + FAIL_TIMEOUT;
        assert!(
            peer.admits(due) && peer.claim(due),
            "the first request is the probe"
        );
        assert!(!peer.admits(due), "others wait while the probe is out");
        assert!(!peer.claim(due));
        assert_eq!(peer.report_success(), Some(Transition::Restored));
        assert!(!peer.is_ejected());
        assert!(peer.admits(due) && peer.claim(due));
    }

    #[test]
    fn a_failed_probe_ejects_again_for_fail_timeout() {
        let (peer, t0) = peer(2);
        peer.report_failure(t0);
        peer.report_failure(t0);
        let due = t0 + FAIL_TIMEOUT;
        assert!(peer.claim(due));
        assert_eq!(peer.report_failure(due + secs(1)), None, "already ejected");
        assert!(!peer.admits(due + secs(10)));
        assert!(peer.admits(due + secs(11)));
    }

    #[test]
    fn a_probe_whose_outcome_never_comes_is_retried_after_fail_timeout() {
        let (peer, t0) = peer(1);
        peer.report_failure(t0);
        assert!(peer.claim(t0 + FAIL_TIMEOUT));
        assert!(!peer.admits(t0 + secs(19)));
        assert!(peer.claim(t0 + secs(20)));
    }

    #[test]
    fn a_success_from_before_the_ejection_does_not_restore() {
        let (peer, t0) = peer(1);
        peer.report_failure(t0);
        assert_eq!(peer.report_success(), None);
        assert!(!peer.admits(t0 + secs(1)));
    }

    #[test]
    fn max_fails_zero_never_ejects() {
        let (peer, t0) = peer(0);
        for _ in 0..100 {
            assert_eq!(peer.report_failure(t0), None);
        }
        assert!(!peer.is_ejected());
        assert!(peer.admits(t0) && peer.claim(t0));
    }
}
