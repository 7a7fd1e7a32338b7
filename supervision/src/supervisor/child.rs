//! What a supervisor keeps per child.
//!
//! A dynamic supervisor may hold one child per connection, so the record is kept small:
//! the unchanging part of the spec ([`ChildMeta`]) is shared by consecutive children
//! started from equal specs (the usual case: every connection's child is
//! `"channel"`, temporary, same shutdown and placement), and a temporary child's start
//! closure is dropped once it has started.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::pid::Pid;
use crate::spec::{ChildKind, ChildSpec, Placement, Restart, Shutdown, StartFn};

/// The part of a child spec that never changes.
#[derive(Debug)]
pub(super) struct ChildMeta {
    pub(super) id: Cow<'static, str>,
    pub(super) restart: Restart,
    pub(super) shutdown: Shutdown,
    pub(super) kind: ChildKind,
    pub(super) placement: Placement,
}

impl ChildMeta {
    /// True if `spec` would produce an identical record (an explicit arbiter never
    /// compares equal: `ArbiterHandle` has no equality).
    fn matches(&self, spec: &ChildSpec) -> bool {
        let same_placement = match (&self.placement, &spec.placement) {
            (Placement::Inherit, Placement::Inherit)
            | (Placement::RoundRobin, Placement::RoundRobin) => true,
            (Placement::Pool(a), Placement::Pool(b)) => a == b,
            _ => false,
        };
        same_placement
            && self.id == spec.id
            && self.restart == spec.restart
            && self.shutdown == spec.shutdown
            && self.kind == spec.kind
    }
}

/// One child of a supervisor.
pub(super) struct Child {
    pub(super) meta: Arc<ChildMeta>,
    /// `None` once a temporary child has started: it is never started again, so the
    /// closure and whatever it captured (a dynamic child's start closure often holds
    /// per-child state) are freed at once instead of living as long as the child.
    pub(super) start: Option<StartFn>,
    pub(super) pid: Option<Pid>,
}

impl Child {
    /// The record for `spec`, sharing `last`'s metadata when it matches.
    pub(super) fn new(spec: ChildSpec, last: Option<&Arc<ChildMeta>>) -> Self {
        let meta = match last {
            Some(meta) if meta.matches(&spec) => Arc::clone(meta),
            _ => Arc::new(ChildMeta {
                id: spec.id,
                restart: spec.restart,
                shutdown: spec.shutdown,
                kind: spec.kind,
                placement: spec.placement,
            }),
        };
        Child {
            meta,
            start: Some(spec.start),
            pid: None,
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.meta.id)
            .field("pid", &self.pid)
            .field("restart", &self.meta.restart)
            .field("startable", &self.start.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::SupervisionError;

    fn spec(id: &'static str) -> ChildSpec {
        let start: StartFn = Arc::new(|_| Err(SupervisionError::NoProc));
        ChildSpec::new(id, start).restart(Restart::Temporary)
    }

    #[test]
    fn equal_specs_share_metadata_and_different_ones_do_not() {
        let a = Child::new(spec("channel"), None);
        let b = Child::new(spec("channel"), Some(&a.meta));
        assert!(Arc::ptr_eq(&a.meta, &b.meta));
        for other in [
            spec("session"),
            spec("channel").restart(Restart::Transient),
            spec("channel").shutdown(Shutdown::Timeout(Duration::from_secs(1))),
            spec("channel").kind(ChildKind::Supervisor),
            spec("channel").placement(Placement::Pool(1)),
        ] {
            let c = Child::new(other, Some(&a.meta));
            assert!(!Arc::ptr_eq(&a.meta, &c.meta), "{:?}", c.meta);
        }
        let pooled = Child::new(spec("channel").placement(Placement::Pool(1)), None);
        let same_pool = Child::new(
            spec("channel").placement(Placement::Pool(1)),
            Some(&pooled.meta),
        );
        assert!(Arc::ptr_eq(&pooled.meta, &same_pool.meta));
    }
}
