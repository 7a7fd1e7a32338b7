//! Exclusive subscriptions (EMQX's `mqtt.exclusive_subscription`): a
//! filter subscribed as `$exclusive/{filter}` is held by one client at a
//! time. Another client's subscription to it is refused (SUBACK 0x97 Quota
//! exceeded in v5, 0x80 in v3) until the holder unsubscribes or its
//! session ends. Messages are routed to `$exclusive/t/#` as to `t/#`.
//!
//! The holder is a session: its client id and the instant the session was
//! created, so that a session that ends after a newer session of the same
//! client id took the filter does not free it from under the new one.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::codec::ByteStr;

/// The prefix of an exclusive subscription.
pub const PREFIX: &str = "$exclusive/";

/// The filter of an exclusive subscription (`$exclusive/t/#` → `t/#`), or
/// `None` for any other subscription.
pub fn strip(filter: &str) -> Option<&str> {
    filter.strip_prefix(PREFIX)
}

/// The session holding a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    client_id: ByteStr,
    session: Instant,
}

/// Which session holds each exclusive filter, node-wide (shared by every
/// channel of every listener).
#[derive(Debug, Default)]
pub struct ExclusiveTable {
    holders: Mutex<HashMap<Box<str>, Holder>>,
}

impl ExclusiveTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `filter` (as subscribed, `$exclusive/` included) for the
    /// session of `client_id` created at `session`. Succeeds when nobody
    /// holds it or the same client id does (a resubscription, or a newer
    /// session of that client, which then becomes the holder).
    pub fn claim(&self, filter: &str, client_id: &ByteStr, session: Instant) -> bool {
        let mut holders = self.holders.lock();
        match holders.get_mut(filter) {
            Some(holder) if holder.client_id != *client_id => false,
            Some(holder) => {
                holder.session = session;
                true
            }
            None => {
                let holder = Holder {
                    client_id: client_id.clone(),
                    session,
                };
                holders.insert(filter.into(), holder);
                true
            }
        }
    }

    /// Frees `filter` if the session of `client_id` created at `session`
    /// holds it.
    pub fn release(&self, filter: &str, client_id: &str, session: Instant) {
        let mut holders = self.holders.lock();
        if holders
            .get(filter)
            .is_some_and(|h| h.client_id == client_id && h.session == session)
        {
            holders.remove(filter);
        }
    }

    /// The client id holding `filter`, if any.
    pub fn holder(&self, filter: &str) -> Option<ByteStr> {
        self.holders.lock().get(filter).map(|h| h.client_id.clone())
    }

    /// How many filters are held.
    pub fn len(&self) -> usize {
        self.holders.lock().len()
    }

    /// Whether no filter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_client_at_a_time_holds_a_filter() {
        let table = ExclusiveTable::new();
        let t0 = Instant::now();
        let (a, b) = (ByteStr::from("a"), ByteStr::from("b"));
        assert!(table.claim("$exclusive/t/#", &a, t0));
        assert!(!table.claim("$exclusive/t/#", &b, t0), "held by a");
        assert!(table.claim("$exclusive/t/#", &a, t0), "a resubscribes");
        assert!(table.claim("$exclusive/u", &b, t0), "another filter");
        assert_eq!(table.holder("$exclusive/t/#"), Some(a.clone()));
        // Only the holder frees it.
        table.release("$exclusive/t/#", "b", t0);
        assert_eq!(table.holder("$exclusive/t/#"), Some(a.clone()));
        table.release("$exclusive/t/#", "a", t0);
        assert!(table.claim("$exclusive/t/#", &b, t0), "free again");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn an_old_session_does_not_free_its_successors_filter() {
        let table = ExclusiveTable::new();
        let (old, new) = (Instant::now(), Instant::now() + Duration::from_secs(1));
        let a = ByteStr::from("a");
        assert!(table.claim("$exclusive/t", &a, old));
        // A new session of the same client id (clean start) takes it over.
        assert!(table.claim("$exclusive/t", &a, new));
        table.release("$exclusive/t", "a", old);
        assert_eq!(table.holder("$exclusive/t"), Some(a));
        table.release("$exclusive/t", "a", new);
        assert!(table.is_empty());
    }

    #[test]
    fn only_exclusive_filters_are_stripped() {
        assert_eq!(strip("$exclusive/t/#"), Some("t/#"));
        assert_eq!(strip("t/#"), None);
        assert_eq!(strip("$share/g/t"), None);
    }
}
