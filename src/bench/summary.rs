//! The result of one run: what was asked, what happened, how the broker
//! fared; printed as text or JSON and read back by the report step.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::procstat::BrokerUsage;
use super::stats::{LatencySummary, Rate};

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Scenario name given with `--label`.
    pub(crate) label: String,
    /// Broker name given with `--broker-name`.
    pub(crate) broker: String,
    /// `conn`, `pub`, `sub`, `pubsub` or `storm`.
    pub(crate) mode: String,
    /// The command line of the run.
    pub(crate) command: String,
    /// Start of the run, seconds since the Unix epoch.
    pub(crate) started_unix: u64,
    /// `3.1.1` or `5`.
    pub(crate) mqtt: String,
    /// QoS of the publishes (or of the retained messages).
    pub(crate) qos: u8,
    /// Payload size in bytes.
    pub(crate) payload_size: usize,
    /// Length of the measured phase in seconds.
    pub(crate) elapsed_s: f64,
    /// Connection attempts.
    pub(crate) connections: u64,
    /// Successful connections.
    pub(crate) connected: u64,
    /// Failed connections.
    pub(crate) connect_failed: u64,
    /// Connections that ended before the run did.
    pub(crate) disconnected: u64,
    /// Successful connections per second, first attempt to last CONNACK.
    pub(crate) connect_rate: f64,
    /// Time from TCP connect to CONNACK.
    pub(crate) connect_latency: LatencySummary,
    /// Publisher connections.
    pub(crate) publishers: u64,
    /// Subscriber connections.
    pub(crate) subscribers: u64,
    /// PUBLISH packets sent.
    pub(crate) sent: u64,
    /// Publishes acknowledged (QoS 1/2).
    pub(crate) acked: u64,
    /// PUBLISH packets received.
    pub(crate) received: u64,
    /// Deliveries the run expected (known when publishers and subscribers
    /// run together).
    pub(crate) expected: Option<u64>,
    /// Deliveries missing: expected minus distinct received, or the
    /// sequence gaps when nothing was expected.
    pub(crate) lost: u64,
    /// Received again (sequence not new for its stream).
    pub(crate) duplicates: u64,
    /// Times the in-flight window timed out (messages presumed lost).
    pub(crate) window_timeouts: u64,
    /// Publishes per second over the measured phase.
    pub(crate) send_rate: f64,
    /// Deliveries per second over the measured phase and the drain.
    pub(crate) recv_rate: f64,
    /// End-to-end latency from the payload timestamp (for `storm`: from
    /// SUBSCRIBE to the last retained message, per subscriber).
    pub(crate) latency: LatencySummary,
    /// The broker process, if its pid was given.
    pub(crate) broker_usage: Option<BrokerUsage>,
    /// RSS growth of the broker per held connection, bytes (`conn`).
    pub(crate) rss_per_connection: Option<f64>,
}

impl Summary {
    /// A human-readable multi-line report.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let name = match (self.broker.is_empty(), self.label.is_empty()) {
            (false, false) => format!("{} / {}", self.broker, self.label),
            (false, true) => self.broker.clone(),
            (true, false) => self.label.clone(),
            (true, true) => self.mode.clone(),
        };
        let _ = writeln!(
            out,
            "== {name}: {} over {:.1}s (MQTT {}, QoS {}, {} B)",
            self.mode, self.elapsed_s, self.mqtt, self.qos, self.payload_size
        );
        let _ = writeln!(
            out,
            "connections  {}/{} ok, {} failed, {} dropped; connect rate {}; CONNACK {}",
            self.connected,
            self.connections,
            self.connect_failed,
            self.disconnected,
            Rate(self.connect_rate),
            self.connect_latency
        );
        if self.publishers + self.subscribers > 0 {
            let expected = self
                .expected
                .map_or_else(|| "?".to_owned(), |e| e.to_string());
            let _ = writeln!(
                out,
                "messages     sent {} ({}), acked {}, received {} ({}), expected {expected}",
                self.sent,
                Rate(self.send_rate),
                self.acked,
                self.received,
                Rate(self.recv_rate)
            );
            let _ = writeln!(
                out,
                "             lost {} ({:.2}%), duplicates {}, window timeouts {}",
                self.lost,
                self.loss_percent(),
                self.duplicates,
                self.window_timeouts
            );
            let _ = writeln!(out, "latency      {}", self.latency);
        }
        if let Some(usage) = &self.broker_usage {
            let _ = writeln!(
                out,
                "broker       pid {}: CPU {:.2}s ({:.0}%), RSS {} -> peak {} -> {} KiB",
                usage.pid,
                usage.cpu_seconds,
                usage.cpu_percent,
                usage.rss_start_kb,
                usage.rss_peak_kb,
                usage.rss_end_kb
            );
        }
        if let Some(bytes) = self.rss_per_connection {
            let _ = writeln!(
                out,
                "             {:.2} KB RSS per connection",
                bytes / 1000.0
            );
        }
        out
    }

    /// Lost deliveries in percent of what was expected (or received).
    pub(crate) fn loss_percent(&self) -> f64 {
        let base = self.expected.unwrap_or(self.received + self.lost);
        if base == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / base as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_rates_losses_and_latency() {
        let summary = Summary {
            label: "fan-in".into(),
            broker: "girder".into(),
            mode: "pubsub".into(),
            mqtt: "3.1.1".into(),
            elapsed_s: 2.0,
            connections: 101,
            connected: 101,
            connect_rate: 1000.0,
            publishers: 100,
            subscribers: 1,
            sent: 200_000,
            received: 199_000,
            expected: Some(200_000),
            lost: 1000,
            send_rate: 100_000.0,
            recv_rate: 99_500.0,
            latency: LatencySummary {
                count: 10,
                p50_ms: 1.5,
                p99_ms: 20.0,
                p999_ms: 30.0,
                max_ms: 1200.0,
                mean_ms: 2.0,
            },
            ..Summary::default()
        };
        let text = summary.to_text();
        assert!(
            text.starts_with("== girder / fan-in: pubsub over 2.0s"),
            "{text}"
        );
        assert!(text.contains("sent 200000 (100.0k/s)"), "{text}");
        assert!(
            text.contains("received 199000 (99.5k/s), expected 200000"),
            "{text}"
        );
        assert!(text.contains("lost 1000 (0.50%)"), "{text}");
        assert!(
            text.contains("p50 1.5ms p99 20.0ms p999 30.0ms max 1.20s"),
            "{text}"
        );
    }

    #[test]
    fn json_round_trip() {
        let summary = Summary {
            label: "idle-10k".into(),
            rss_per_connection: Some(812.5),
            ..Summary::default()
        };
        let json = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.label, "idle-10k");
        assert_eq!(back.rss_per_connection, Some(812.5));
    }
}
