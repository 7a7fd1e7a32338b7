//! What one connection does once connected: stay idle, publish, or
//! subscribe and measure. Each role runs as one tokio task (plus an ack
//! reader for publishers) and ends when the run's stop signal flips.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use girder_broker::codec::{
    ByteStr, Packet, PubAck, PubComp, PubRec, PubRel, Publish, PublishProperties, QoS,
};
use tokio::sync::{watch, Mutex, Semaphore};

use super::client::{Client, PacketWriter};
use super::payload::{self, Stamp};
use super::stats::{Counters, Latency, LocalLatency, StreamTracker};
use super::BenchError;

/// Publishes written per batch (one lock of the writer, one socket write).
const BATCH: u64 = 64;

/// State shared by every task of a run.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Progress counters.
    pub(crate) counters: Counters,
    /// End-to-end latencies (payload timestamp to receipt).
    pub(crate) latency: Arc<Latency>,
    /// Distinct deliveries seen by subscribers.
    pub(crate) distinct: AtomicU64,
    /// Sequence gaps seen by subscribers.
    pub(crate) gaps: AtomicU64,
    /// Deliveries the publishes so far should cause (sent × fan-out).
    pub(crate) expected: AtomicU64,
    /// Publishers that started publishing.
    pub(crate) publishers_started: AtomicU64,
    /// Publishers that stopped publishing (count reached or phase over).
    pub(crate) publishers_done: AtomicU64,
    /// Subscribers that received all they expected (`storm`).
    pub(crate) subscribers_done: AtomicU64,
    /// The in-flight window over all publishers, if bounded.
    pub(crate) window: Option<Arc<Semaphore>>,
    /// Its size.
    pub(crate) window_size: u32,
    /// Whether subscribers give window permits back (end to end) rather
    /// than publishers on acknowledgement.
    pub(crate) window_end_to_end: bool,
    /// How long a publisher waits for window permits before sending anyway.
    pub(crate) window_timeout: Duration,
}

impl Shared {
    /// Fresh state with this window.
    pub(crate) fn new(window: u32, end_to_end: bool) -> Self {
        Self {
            counters: Counters::default(),
            latency: Arc::new(Latency::new()),
            distinct: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            publishers_started: AtomicU64::new(0),
            publishers_done: AtomicU64::new(0),
            subscribers_done: AtomicU64::new(0),
            window: (window > 0).then(|| Arc::new(Semaphore::new(window as usize))),
            window_size: window,
            window_end_to_end: end_to_end,
            window_timeout: Duration::from_secs(2),
        }
    }
}

/// Holds an idle connection: answers nothing, pings within the keep alive.
pub(crate) async fn idle(
    shared: Arc<Shared>,
    mut client: Client,
    keep_alive: u16,
    mut stop: watch::Receiver<bool>,
) {
    client.reader.release_buffer();
    client.writer.release_buffer();
    let ping_every = Duration::from_secs(u64::from(keep_alive.max(1))) * 3 / 4;
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            packet = client.reader.next() => match packet {
                Ok(Some(_)) => client.reader.release_buffer(),
                Ok(None) | Err(_) => break,
            },
            _ = tokio::time::sleep_until(next_ping), if keep_alive > 0 => {
                next_ping += ping_every;
                if client.writer.queue(&Packet::PingReq).is_err() || client.writer.flush().await.is_err() {
                    break;
                }
                client.writer.release_buffer();
            }
        }
    }
    Counters::add(&shared.counters.disconnected, 1);
}

/// What a publisher sends.
#[derive(Debug, Clone)]
pub(crate) struct PublishPlan {
    /// Its topic, already expanded.
    pub(crate) topic: String,
    /// Payload size.
    pub(crate) size: usize,
    /// QoS.
    pub(crate) qos: QoS,
    /// Retain flag.
    pub(crate) retain: bool,
    /// Its share of the rate, messages per second (0: no pacing).
    pub(crate) rate: f64,
    /// Messages at most (0: no limit).
    pub(crate) count: u64,
    /// Deliveries one publish causes among the run's subscribers.
    pub(crate) fanout: u64,
}

/// The signals a publisher follows: start, stop publishing, stop reading.
#[derive(Debug, Clone)]
pub(crate) struct PublisherSignals {
    /// Flips when the measured phase starts.
    pub(crate) go: watch::Receiver<bool>,
    /// Flips when the measured phase ends (publishing stops).
    pub(crate) done: watch::Receiver<bool>,
    /// Flips when the run ends (acknowledgements are no longer read).
    pub(crate) stop: watch::Receiver<bool>,
}

/// Publishes per `plan` from the moment `go` flips until `done` flips or
/// the count is reached; then keeps reading acknowledgements until `stop`.
pub(crate) async fn publisher(
    shared: Arc<Shared>,
    index: u32,
    client: Client,
    plan: PublishPlan,
    signals: PublisherSignals,
) {
    let PublisherSignals {
        mut go,
        done: mut stop_publishing,
        mut stop,
    } = signals;
    let Client {
        mut reader,
        writer,
        server_receive_maximum,
    } = client;
    let writer = Arc::new(Mutex::new(writer));
    // QoS 1/2 in flight on this connection, within the broker's receive maximum.
    let connection_window = Arc::new(Semaphore::new(usize::from(server_receive_maximum.max(1))));
    let acks = {
        let shared = shared.clone();
        let writer = writer.clone();
        let connection_window = connection_window.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let packet = tokio::select! {
                    _ = stop.changed() => return,
                    packet = reader.next() => packet,
                };
                let done = match packet {
                    Ok(Some(Packet::PubAck(_) | Packet::PubComp(_))) => true,
                    Ok(Some(Packet::PubRec(rec))) => {
                        let mut w = writer.lock().await;
                        let rel = Packet::PubRel(PubRel::new(rec.packet_id));
                        if w.queue(&rel).is_err() || w.flush().await.is_err() {
                            break;
                        }
                        false
                    }
                    Ok(Some(_)) => false,
                    Ok(None) | Err(_) => break,
                };
                if done {
                    Counters::add(&shared.counters.acked, 1);
                    connection_window.add_permits(1);
                    if let (Some(window), false) = (&shared.window, shared.window_end_to_end) {
                        window.add_permits(1);
                    }
                }
            }
            Counters::add(&shared.counters.disconnected, 1);
        })
    };
    if go.wait_for(|go| *go).await.is_err() {
        return;
    }
    Counters::add(&shared.publishers_started, 1);
    let batch = batch_size(&shared, &plan, server_receive_maximum);
    let topic = ByteStr::copy_from_str(&plan.topic);
    let start = Instant::now();
    let mut sequence = 0u64;
    let mut packet_id = 0u16;
    loop {
        if *stop_publishing.borrow() || (plan.count > 0 && sequence >= plan.count) {
            break;
        }
        let due = if plan.rate > 0.0 {
            (start.elapsed().as_secs_f64() * plan.rate) as u64 + 1
        } else {
            u64::MAX
        };
        let mut n = due.saturating_sub(sequence).min(batch);
        if plan.count > 0 {
            n = n.min(plan.count - sequence);
        }
        if n == 0 {
            let next = start + Duration::from_secs_f64((sequence + 1) as f64 / plan.rate);
            tokio::select! {
                _ = stop_publishing.changed() => break,
                _ = tokio::time::sleep_until(next.into()) => continue,
            }
        }
        let stopped = tokio::select! {
            _ = stop_publishing.changed() => true,
            () = acquire(&shared, &connection_window, &plan, n) => false,
        };
        if stopped {
            break;
        }
        let mut w = writer.lock().await;
        let sent = queue_batch(&mut w, index, &topic, &plan, sequence, n, &mut packet_id);
        if sent.is_err() || w.flush().await.is_err() {
            break;
        }
        drop(w);
        sequence += n;
        Counters::add(&shared.counters.sent, n);
        Counters::add(&shared.expected, n * plan.fanout);
    }
    Counters::add(&shared.publishers_done, 1);
    let _ = stop.wait_for(|stop| *stop).await;
    acks.abort();
}

/// Publishes per batch: at most [`BATCH`], and never more than one batch's
/// permits can be had at once (the broker's receive maximum for QoS 1/2,
/// the global window divided by the fan-out end to end).
fn batch_size(shared: &Shared, plan: &PublishPlan, server_receive_maximum: u16) -> u64 {
    let mut batch = BATCH;
    if plan.qos != QoS::AtMostOnce {
        batch = batch.min(u64::from(server_receive_maximum.max(1)));
    }
    let per_publish = if shared.window_end_to_end {
        plan.fanout
    } else {
        1
    };
    if shared.window.is_some() && per_publish > 0 {
        batch = batch.min((u64::from(shared.window_size) / per_publish).max(1));
    }
    batch
}

/// Takes the window permits for `n` publishes (global window, and this
/// connection's receive maximum for QoS 1/2). A global wait longer than the
/// window timeout is counted and given up: the messages holding the permits
/// are presumed lost.
async fn acquire(shared: &Shared, connection_window: &Semaphore, plan: &PublishPlan, n: u64) {
    let n = n as u32;
    if plan.qos != QoS::AtMostOnce {
        if let Ok(permits) = connection_window.acquire_many(n).await {
            permits.forget();
        }
    }
    let Some(window) = &shared.window else { return };
    let wanted = if shared.window_end_to_end {
        n.saturating_mul(u32::try_from(plan.fanout).unwrap_or(u32::MAX))
    } else {
        n
    };
    if wanted == 0 {
        return;
    }
    match tokio::time::timeout(shared.window_timeout, window.acquire_many(wanted)).await {
        Ok(Ok(permits)) => permits.forget(),
        Ok(Err(_)) => {}
        Err(_) => Counters::add(&shared.counters.window_timeouts, 1),
    }
}

fn queue_batch(
    writer: &mut PacketWriter,
    index: u32,
    topic: &ByteStr,
    plan: &PublishPlan,
    first: u64,
    n: u64,
    packet_id: &mut u16,
) -> Result<(), BenchError> {
    for sequence in first..first + n {
        let id = if plan.qos == QoS::AtMostOnce {
            None
        } else {
            *packet_id = packet_id.checked_add(1).unwrap_or(1);
            Some(*packet_id)
        };
        let stamp = Stamp {
            sent_ns: payload::now_ns(),
            publisher: index,
            sequence,
        };
        writer.queue(&Packet::Publish(Publish {
            dup: false,
            qos: plan.qos,
            retain: plan.retain,
            topic: topic.clone(),
            packet_id: id,
            payload: payload::encode(stamp, plan.size),
            properties: PublishProperties::default(),
        }))?;
    }
    Ok(())
}

/// How a subscriber measures latency.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// From the timestamp in each payload.
    Payload,
    /// From SUBSCRIBE to the last of this many distinct messages (storm).
    UntilComplete(u64),
}

/// Subscribes to `filters`, then receives (acknowledging QoS 1/2) and
/// measures until `stop` flips.
pub(crate) async fn subscriber(
    shared: Arc<Shared>,
    mut client: Client,
    filters: Vec<String>,
    qos: QoS,
    timeout: Duration,
    measure: Measure,
    mut stop: watch::Receiver<bool>,
) {
    let subscribed_at = Instant::now();
    let early = match client.subscribe(&filters, qos, timeout).await {
        Ok(early) => early,
        Err(err) => {
            eprintln!("girder bench: subscribe failed: {err}");
            Counters::add(&shared.counters.disconnected, 1);
            return;
        }
    };
    Counters::add(&shared.counters.subscribed, 1);
    let mut receiver = Receiver {
        shared: shared.clone(),
        latency: LocalLatency::new(shared.latency.clone()),
        tracker: StreamTracker::default(),
        measure,
        subscribed_at,
        complete: false,
    };
    let mut alive = true;
    for packet in early {
        alive &= receiver.handle(packet, &mut client.writer).is_ok();
    }
    while alive {
        if client.writer.flush().await.is_err() {
            break;
        }
        let packet = tokio::select! {
            _ = stop.changed() => break,
            packet = client.reader.next() => packet,
        };
        let Ok(Some(packet)) = packet else {
            alive = false;
            break;
        };
        alive = receiver.handle(packet, &mut client.writer).is_ok();
        while alive {
            match client.reader.try_next() {
                Ok(Some(packet)) => alive = receiver.handle(packet, &mut client.writer).is_ok(),
                Ok(None) => break,
                Err(_) => alive = false,
            }
        }
    }
    if !alive {
        Counters::add(&shared.counters.disconnected, 1);
    }
    receiver.finish();
}

/// A subscriber's receiving state.
#[derive(Debug)]
struct Receiver {
    shared: Arc<Shared>,
    latency: LocalLatency,
    tracker: StreamTracker,
    measure: Measure,
    subscribed_at: Instant,
    complete: bool,
}

impl Receiver {
    fn handle(&mut self, packet: Packet, writer: &mut PacketWriter) -> Result<(), BenchError> {
        let publish = match packet {
            Packet::Publish(publish) => publish,
            Packet::PubRel(rel) => {
                return writer.queue(&Packet::PubComp(PubComp::new(rel.packet_id)))
            }
            _ => return Ok(()),
        };
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => writer.queue(&Packet::PubAck(PubAck::new(id)))?,
            (QoS::ExactlyOnce, Some(id)) => writer.queue(&Packet::PubRec(PubRec::new(id)))?,
            _ => {}
        }
        let counters = &self.shared.counters;
        Counters::add(&counters.received, 1);
        let Some(stamp) = payload::decode(&publish.payload) else {
            return Ok(());
        };
        if !self.tracker.observe(&stamp) {
            Counters::add(&counters.duplicates, 1);
            return Ok(());
        }
        match self.measure {
            Measure::Payload => {
                let now = payload::now_ns();
                self.latency
                    .record(now.saturating_sub(stamp.sent_ns) / 1000);
                if let (Some(window), true) = (&self.shared.window, self.shared.window_end_to_end) {
                    window.add_permits(1);
                }
            }
            Measure::UntilComplete(expected) => {
                if !self.complete && self.tracker.distinct() >= expected {
                    self.complete = true;
                    let us = self.subscribed_at.elapsed().as_micros();
                    self.latency.record(u64::try_from(us).unwrap_or(u64::MAX));
                    Counters::add(&self.shared.subscribers_done, 1);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) {
        self.latency.flush();
        Counters::add(&self.shared.distinct, self.tracker.distinct());
        Counters::add(&self.shared.gaps, self.tracker.gaps());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(qos: QoS, fanout: u64) -> PublishPlan {
        PublishPlan {
            topic: "t".into(),
            size: 64,
            qos,
            retain: false,
            rate: 0.0,
            count: 0,
            fanout,
        }
    }

    #[test]
    fn batches_fit_the_windows() {
        let unbounded = Shared::new(0, true);
        assert_eq!(batch_size(&unbounded, &plan(QoS::AtMostOnce, 1), 10), BATCH);
        assert_eq!(batch_size(&unbounded, &plan(QoS::AtLeastOnce, 1), 10), 10);
        let end_to_end = Shared::new(5000, true);
        assert_eq!(
            batch_size(&end_to_end, &plan(QoS::AtMostOnce, 1000), 100),
            5
        );
        assert_eq!(
            batch_size(&end_to_end, &plan(QoS::AtMostOnce, 10_000), 100),
            1
        );
        assert_eq!(
            batch_size(&end_to_end, &plan(QoS::AtMostOnce, 0), 100),
            BATCH
        );
        let acked = Shared::new(20, false);
        assert_eq!(
            batch_size(&acked, &plan(QoS::AtLeastOnce, 1000), u16::MAX),
            20
        );
    }
}
