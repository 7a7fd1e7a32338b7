//! The node's counters and gauges, with EMQX's names (no `_total` suffix),
//! kept as relaxed atomics so that the publish path pays one uncontended
//! add per event.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! metrics {
    ($($(#[$doc:meta])* $field:ident => $name:literal,)*) => {
        /// Node-wide counters and gauges.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[$doc])* pub $field: AtomicU64,)*
        }

        impl Metrics {
            /// Every metric as (EMQX name, value).
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$(($name, self.$field.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

metrics! {
    /// Connections currently open (a gauge).
    connections => "emqx_connections_count",
    /// CONNECTs accepted.
    client_connected => "emqx_client_connected",
    /// Connections ended.
    client_disconnected => "emqx_client_disconnected",
    /// Connections refused because the listener was full.
    connections_refused => "emqx_connections_refused",
    /// PUBLISH packets received from clients.
    messages_received => "emqx_messages_received",
    /// Deliveries handed to subscribers.
    messages_delivered => "emqx_messages_delivered",
    /// Messages dropped because no subscriber matched.
    messages_dropped_no_subscribers => "emqx_messages_dropped_no_subscribers",
    /// Deliveries dropped because they exceed the client's Maximum Packet Size.
    delivery_dropped_too_large => "emqx_delivery_dropped_too_large",
    /// Deliveries dropped because a subscriber's mailbox was full.
    delivery_dropped_queue_full => "emqx_delivery_dropped_queue_full",
    /// Messages sent to other nodes' subscribers (once per node).
    messages_forward => "emqx_messages_forward",
    /// Forwards to another node that it did not confirm (its link went down,
    /// or it did not answer in time).
    messages_forward_failed => "emqx_messages_forward_failed",
    /// Retained messages refused by the store's limits.
    retained_refused => "emqx_retained_refused",
    /// Bytes received from clients.
    bytes_received => "emqx_bytes_received",
    /// Bytes sent to clients.
    bytes_sent => "emqx_bytes_sent",
}

impl Metrics {
    /// A message matched `n` subscriptions.
    pub fn messages_routed(&self, n: usize) {
        if n == 0 {
            self.messages_dropped_no_subscribers
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A redelivery found no other member.
    pub fn dropped_no_subscriber(&self) {
        self.messages_dropped_no_subscribers
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `n` deliveries did not fit a subscriber's mailbox.
    pub fn dropped_overload(&self, n: usize) {
        self.delivery_dropped_queue_full
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The retained store refused a message.
    pub fn retained_refused(&self) {
        self.retained_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts one from a gauge.
    pub fn dec(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }
}
