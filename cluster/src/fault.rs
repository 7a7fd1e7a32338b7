//! Fault injection on links, for partition tests without docker.
//!
//! Enabled by [`crate::ClusterOptions::fault_injection`]; driven through
//! [`crate::ClusterHandle::inject_fault`] or the admin `ClusterDebug` call.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// What to do to the link to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Close the link and refuse it (both dialing and accepting) until restored.
    Cut,
    /// Lift every fault on the peer; the link comes back by itself.
    Restore,
    /// Hold every outgoing frame this long before writing it.
    Delay(Duration),
    /// Drop every outgoing frame, heartbeats and handshakes included, so the
    /// peer sees silence and declares this node down.
    Drop,
}

/// The faults in force on one peer. Read by the link's writer on every batch.
#[derive(Debug, Default)]
pub(crate) struct Fault {
    cut: AtomicBool,
    drop: AtomicBool,
    delay_ms: AtomicU32,
}

impl Fault {
    pub(crate) fn apply(&self, action: FaultAction) {
        match action {
            FaultAction::Cut => self.cut.store(true, Ordering::Relaxed),
            FaultAction::Drop => self.drop.store(true, Ordering::Relaxed),
            FaultAction::Delay(d) => {
                let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
                self.delay_ms.store(ms, Ordering::Relaxed);
            }
            FaultAction::Restore => {
                self.cut.store(false, Ordering::Relaxed);
                self.drop.store(false, Ordering::Relaxed);
                self.delay_ms.store(0, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    pub(crate) fn drops(&self) -> bool {
        self.drop.load(Ordering::Relaxed)
    }

    pub(crate) fn delay(&self) -> Option<Duration> {
        match self.delay_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_lifts_every_fault() {
        let f = Fault::default();
        f.apply(FaultAction::Cut);
        f.apply(FaultAction::Drop);
        f.apply(FaultAction::Delay(Duration::from_millis(20)));
        assert!(f.is_cut() && f.drops());
        assert_eq!(f.delay(), Some(Duration::from_millis(20)));
        f.apply(FaultAction::Restore);
        assert!(!f.is_cut() && !f.drops());
        assert_eq!(f.delay(), None);
    }
}
