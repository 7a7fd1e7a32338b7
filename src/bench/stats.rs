//! Counters shared by the clients of a run, latency recording, loss and
//! duplicate tracking, and the final summary.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::payload::Stamp;

/// Counters updated by every client task of a run (relaxed atomics: they
/// are only read for progress lines and the summary).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Connections that got a successful CONNACK.
    pub(crate) connected: AtomicU64,
    /// Connections that failed (socket error, refusal, timeout).
    pub(crate) connect_failed: AtomicU64,
    /// Connections that ended before the run did.
    pub(crate) disconnected: AtomicU64,
    /// Subscribers whose SUBACK arrived.
    pub(crate) subscribed: AtomicU64,
    /// PUBLISH packets written by publishers.
    pub(crate) sent: AtomicU64,
    /// Publishes acknowledged (PUBACK, or PUBCOMP for QoS 2).
    pub(crate) acked: AtomicU64,
    /// PUBLISH packets received by subscribers.
    pub(crate) received: AtomicU64,
    /// Received publishes whose sequence was not new for their stream.
    pub(crate) duplicates: AtomicU64,
    /// Times a publisher waited for the in-flight window longer than the
    /// window timeout and sent anyway (a sign of lost messages).
    pub(crate) window_timeouts: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Highest latency recorded, in microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Samples a client keeps before taking the shared lock.
const LOCAL_BATCH: usize = 256;

/// A latency histogram in microseconds shared by the clients of a run.
#[derive(Debug)]
pub(crate) struct Latency {
    histogram: Mutex<Histogram<u64>>,
}

impl Latency {
    /// An empty histogram (1 µs to 1 h, 3 significant digits).
    pub(crate) fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("constant histogram bounds are valid");
        Self {
            histogram: Mutex::new(histogram),
        }
    }

    /// Records a batch of samples under one lock.
    pub(crate) fn record_all(&self, samples: &[u64]) {
        let mut histogram = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &us in samples {
            histogram.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// The percentiles recorded so far.
    pub(crate) fn summary(&self) -> LatencySummary {
        let histogram = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        LatencySummary::from_histogram(&histogram)
    }
}

/// A client's buffer of latency samples, flushed to the shared histogram in
/// batches so that the lock is taken once per [`LOCAL_BATCH`] samples.
#[derive(Debug)]
pub(crate) struct LocalLatency {
    shared: Arc<Latency>,
    samples: Vec<u64>,
}

impl LocalLatency {
    /// A buffer feeding `shared`.
    pub(crate) fn new(shared: Arc<Latency>) -> Self {
        Self {
            shared,
            samples: Vec::new(),
        }
    }

    /// Records one sample in microseconds.
    pub(crate) fn record(&mut self, us: u64) {
        self.samples.push(us);
        if self.samples.len() >= LOCAL_BATCH {
            self.flush();
        }
    }

    /// Moves the buffered samples to the shared histogram.
    pub(crate) fn flush(&mut self) {
        if !self.samples.is_empty() {
            self.shared.record_all(&self.samples);
            self.samples.clear();
        }
    }
}

impl Drop for LocalLatency {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    /// Number of samples.
    pub(crate) count: u64,
    /// Mean.
    pub(crate) mean_ms: f64,
    /// Median.
    pub(crate) p50_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// 99.9th percentile.
    pub(crate) p999_ms: f64,
    /// Largest sample.
    pub(crate) max_ms: f64,
}

impl LatencySummary {
    /// Percentiles of a histogram recorded in microseconds.
    pub(crate) fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {} p99 {} p999 {} max {} ({} samples)",
            Millis(self.p50_ms),
            Millis(self.p99_ms),
            Millis(self.p999_ms),
            Millis(self.max_ms),
            self.count
        )
    }
}

/// A duration in milliseconds, printed with a unit that keeps it short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Millis(pub(crate) f64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 1.0 {
            write!(f, "{:.0}µs", ms * 1000.0)
        } else if ms < 1000.0 {
            write!(f, "{ms:.1}ms")
        } else {
            write!(f, "{:.2}s", ms / 1000.0)
        }
    }
}

/// A rate per second, printed with a k/M suffix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate(pub(crate) f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r >= 1e6 {
            write!(f, "{:.2}M/s", r / 1e6)
        } else if r >= 1e3 {
            write!(f, "{:.1}k/s", r / 1e3)
        } else {
            write!(f, "{r:.0}/s")
        }
    }
}

/// What one subscriber saw of each publisher's stream of sequence numbers.
///
/// A broker keeps the order of one publisher's messages on one topic, so a
/// sequence number at or below the highest seen is a duplicate.
#[derive(Debug, Default)]
pub(crate) struct StreamTracker {
    /// publisher → (highest sequence seen, distinct messages seen).
    streams: HashMap<u32, (u64, u64)>,
}

impl StreamTracker {
    /// Records a receipt; returns whether it was new (not a duplicate).
    pub(crate) fn observe(&mut self, stamp: &Stamp) -> bool {
        match self.streams.get_mut(&stamp.publisher) {
            None => {
                self.streams.insert(stamp.publisher, (stamp.sequence, 1));
                true
            }
            Some((highest, distinct)) if stamp.sequence > *highest => {
                *highest = stamp.sequence;
                *distinct += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// Distinct messages seen over every stream.
    pub(crate) fn distinct(&self) -> u64 {
        self.streams.values().map(|(_, d)| d).sum()
    }

    /// Messages missing inside the streams (sequence gaps); messages lost
    /// after the last one received are not visible here.
    pub(crate) fn gaps(&self) -> u64 {
        self.streams
            .values()
            .map(|(highest, distinct)| (highest + 1).saturating_sub(*distinct))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(publisher: u32, sequence: u64) -> Stamp {
        Stamp {
            sent_ns: 0,
            publisher,
            sequence,
        }
    }

    #[test]
    fn summary_of_a_known_distribution() {
        let mut h = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(
            s.to_string(),
            format!(
                "p50 {} p99 {} p999 {} max {} (1000 samples)",
                Millis(s.p50_ms),
                Millis(s.p99_ms),
                Millis(s.p999_ms),
                Millis(s.max_ms)
            )
        );
    }

    #[test]
    fn empty_summary_says_so() {
        assert_eq!(LatencySummary::default().to_string(), "no samples");
    }

    #[test]
    fn units_follow_magnitude() {
        assert_eq!(Millis(0.25).to_string(), "250µs");
        assert_eq!(Millis(12.34).to_string(), "12.3ms");
        assert_eq!(Millis(6400.0).to_string(), "6.40s");
        assert_eq!(Rate(950.0).to_string(), "950/s");
        assert_eq!(Rate(81_000.0).to_string(), "81.0k/s");
        assert_eq!(Rate(1_250_000.0).to_string(), "1.25M/s");
    }

    #[test]
    fn shared_latency_merges_local_batches() {
        let shared = Arc::new(Latency::new());
        {
            let mut local = LocalLatency::new(shared.clone());
            for _ in 0..300 {
                local.record(2000);
            }
        }
        let s = shared.summary();
        assert_eq!(s.count, 300);
        assert!((s.p50_ms - 2.0).abs() < 0.01);
    }

    #[test]
    fn tracker_counts_duplicates_and_gaps() {
        let mut t = StreamTracker::default();
        assert!(t.observe(&stamp(1, 0)));
        assert!(t.observe(&stamp(1, 1)));
        assert!(!t.observe(&stamp(1, 1)));
        assert!(t.observe(&stamp(1, 4)));
        assert!(t.observe(&stamp(2, 0)));
        assert!(!t.observe(&stamp(1, 3)));
        assert_eq!(t.distinct(), 4);
        assert_eq!(t.gaps(), 2);
    }
}
