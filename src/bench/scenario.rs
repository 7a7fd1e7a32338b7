//! The scenarios: connect phase, measured phase with progress lines, drain,
//! summary. Every phase has a deadline, so every run ends by itself.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use girder_broker::codec::{ProtocolVersion, QoS};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::client::{Client, ConnectOptions};
use super::pattern::{self, expand};
use super::procstat::Monitor;
use super::roles::{self, Measure, PublishPlan, Shared};
use super::stats::{Counters, Latency, LocalLatency, Rate};
use super::summary::Summary;
use super::{qos, BenchCommand, BenchError, CommonArgs, PublishArgs, SubscribeArgs};

/// Connection attempts waiting for their CONNACK at once, at most.
const MAX_PENDING_CONNECTS: usize = 2000;

/// Runs one load scenario.
pub(super) async fn run(command: BenchCommand) -> Result<(), BenchError> {
    match command {
        BenchCommand::Conn {
            common,
            count,
            hold,
        } => conn(common, count, hold).await,
        BenchCommand::Pub { common, publish } => {
            pubsub(common, Some(publish), None, Vec::new(), 0).await
        }
        BenchCommand::Sub { common, subscribe } => {
            pubsub(common, None, Some(subscribe), Vec::new(), 0).await
        }
        BenchCommand::Pubsub {
            common,
            publish,
            subscribe,
            sub_hosts,
            drain,
        } => pubsub(common, Some(publish), Some(subscribe), sub_hosts, drain).await,
        BenchCommand::Storm {
            common,
            retained,
            topic,
            subscribers,
            sub_topic,
            size,
        } => storm(common, retained, topic, subscribers, sub_topic, size).await,
        BenchCommand::Report { .. } => {
            Err(BenchError::Usage("report is not a load scenario".into()))
        }
    }
}

/// What every scenario shares: options, counters, the stop signal, the
/// tasks, the broker monitor.
struct Run {
    common: CommonArgs,
    options: ConnectOptions,
    sources: Vec<IpAddr>,
    shared: Arc<Shared>,
    connect_latency: Arc<Latency>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    monitor: Option<Monitor>,
    started: Instant,
    started_unix: u64,
    /// Connection attempts so far (they get consecutive source addresses).
    attempts: u64,
    /// Nanoseconds from `started` to the latest CONNACK.
    last_connack_ns: Arc<AtomicU64>,
}

impl Run {
    fn new(common: CommonArgs, window: u32, end_to_end: bool) -> Result<Self, BenchError> {
        let monitor = common.broker_pid.map(Monitor::start).transpose()?;
        let options = ConnectOptions {
            version: common.version(),
            keep_alive: common.keepalive,
            clean_start: true,
            timeout: Duration::from_secs(common.connect_timeout.max(1)),
        };
        Ok(Self {
            sources: common.sources(),
            options,
            common,
            shared: Arc::new(Shared::new(window, end_to_end)),
            connect_latency: Arc::new(Latency::new()),
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
            monitor,
            started: Instant::now(),
            started_unix: super::payload::now_ns() / 1_000_000_000,
            attempts: 0,
            last_connack_ns: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Connects `count` clients at the connect rate, round-robin over
    /// `hosts` and the source addresses; each successful one runs `role`.
    /// Returns once every attempt has been started.
    async fn connect_many<F, Fut>(
        &mut self,
        role_name: &str,
        count: usize,
        hosts: &[SocketAddr],
        role: F,
    ) where
        F: Fn(usize, String, Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let role = Arc::new(role);
        let pending = Arc::new(Semaphore::new(MAX_PENDING_CONNECTS));
        let interval = 1.0 / f64::from(self.common.connect_rate.max(1));
        let start = Instant::now();
        for index in 0..count {
            let due = start + Duration::from_secs_f64(index as f64 * interval);
            tokio::time::sleep_until(due.into()).await;
            let Ok(permit) = pending.clone().acquire_owned().await else {
                break;
            };
            let attempt = self.attempts as usize;
            self.attempts += 1;
            let host = hosts[index % hosts.len()];
            let source = self.sources[attempt % self.sources.len()];
            let client_id = format!("{}-{role_name}-{}", self.common.prefix, index + 1);
            let options = self.options.clone();
            let shared = self.shared.clone();
            let connect_latency = self.connect_latency.clone();
            let last_connack = self.last_connack_ns.clone();
            let started = self.started;
            let role = role.clone();
            self.tasks.spawn(async move {
                let t0 = Instant::now();
                let result = Client::connect(host, Some(source), &client_id, &options).await;
                drop(permit);
                match result {
                    Ok(client) => {
                        LocalLatency::new(connect_latency)
                            .record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                        Counters::add(&shared.counters.connected, 1);
                        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        last_connack.fetch_max(ns, Ordering::Relaxed);
                        role(index, client_id, client).await;
                    }
                    Err(err) => {
                        if Counters::get(&shared.counters.connect_failed) < 5 {
                            eprintln!("girder bench: {client_id} to {host} from {source}: {err}");
                        }
                        Counters::add(&shared.counters.connect_failed, 1);
                    }
                }
            });
        }
    }

    /// Waits until `done()` or the deadline, printing a progress line per
    /// second; returns whether `done()` held.
    async fn progress(
        &mut self,
        phase: &str,
        deadline: Instant,
        done: impl Fn(&Shared) -> bool,
    ) -> bool {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut last_print = Instant::now();
        let c = &self.shared.counters;
        let (mut last_sent, mut last_recv) = (Counters::get(&c.sent), Counters::get(&c.received));
        loop {
            if done(&self.shared) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tick.tick().await;
            let since = last_print.elapsed();
            if since >= Duration::from_secs(1) {
                last_print = Instant::now();
                let (sent, recv) = (Counters::get(&c.sent), Counters::get(&c.received));
                let rss = self.monitor.as_mut().and_then(Monitor::tick);
                if !self.common.quiet {
                    let secs = since.as_secs_f64();
                    eprintln!(
                        "[{:>5.1}s] {phase:<9} conn {}/{} fail {} | sent {} recv {} | acked {} dup {}{}",
                        self.started.elapsed().as_secs_f64(),
                        Counters::get(&c.connected),
                        self.attempts,
                        Counters::get(&c.connect_failed),
                        Rate((sent - last_sent) as f64 / secs),
                        Rate((recv - last_recv) as f64 / secs),
                        Counters::get(&c.acked),
                        Counters::get(&c.duplicates),
                        rss.map(|kb| format!(" | broker RSS {kb} KiB")).unwrap_or_default(),
                    );
                }
                (last_sent, last_recv) = (sent, recv);
            }
        }
    }

    /// A deadline for connecting `count` more clients at the connect rate.
    fn connect_deadline(&self, count: usize) -> Instant {
        let secs = count as f64 / f64::from(self.common.connect_rate.max(1));
        Instant::now()
            + Duration::from_secs_f64(secs)
            + self.options.timeout
            + Duration::from_secs(2)
    }

    /// Signals every task to stop and waits for them (at most 2 s, then
    /// aborts the rest).
    async fn stop_tasks(&mut self) {
        let _ = self.stop.send(true);
        let grace = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                () = &mut grace => { self.tasks.abort_all(); break }
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }

    /// Stops every task and fills in the common fields of the summary.
    async fn finish(mut self, mode: &str, mut summary: Summary) -> Result<(), BenchError> {
        self.stop_tasks().await;
        let c = &self.shared.counters;
        summary.label = self.common.label.clone();
        summary.broker = self.common.broker_name.clone();
        summary.mode = mode.to_owned();
        summary.command = std::env::args().collect::<Vec<_>>().join(" ");
        summary.started_unix = self.started_unix;
        summary.mqtt = match self.options.version {
            ProtocolVersion::V5 => "5".into(),
            _ => "3.1.1".into(),
        };
        summary.connections = self.attempts;
        summary.connected = Counters::get(&c.connected);
        summary.connect_failed = Counters::get(&c.connect_failed);
        summary.disconnected = Counters::get(&c.disconnected);
        let last_connack = Duration::from_nanos(self.last_connack_ns.load(Ordering::Relaxed));
        if last_connack > Duration::ZERO {
            summary.connect_rate = summary.connected as f64 / last_connack.as_secs_f64();
        }
        summary.connect_latency = self.connect_latency.summary();
        summary.sent = Counters::get(&c.sent);
        summary.acked = Counters::get(&c.acked);
        summary.received = Counters::get(&c.received);
        summary.duplicates = Counters::get(&c.duplicates);
        summary.window_timeouts = Counters::get(&c.window_timeouts);
        summary.latency = self.shared.latency.summary();
        let distinct = Counters::get(&self.shared.distinct);
        summary.lost = match summary.expected {
            Some(expected) => expected.saturating_sub(distinct),
            None => Counters::get(&self.shared.gaps),
        };
        if summary.broker_usage.is_none() {
            summary.broker_usage = self.monitor.as_mut().map(Monitor::usage);
        }
        let json = serde_json::to_string_pretty(&summary).map_err(|source| BenchError::Json {
            path: "<summary>".into(),
            source,
        })?;
        if let Some(path) = &self.common.out {
            std::fs::write(path, format!("{json}\n")).map_err(|source| BenchError::File {
                path: path.clone(),
                source,
            })?;
        }
        if self.common.json {
            println!("{json}");
        } else {
            print!("{}", summary.to_text());
        }
        Ok(())
    }
}

/// `conn`: open `count` connections, hold them, measure RSS per connection.
async fn conn(common: CommonArgs, count: usize, hold: u64) -> Result<(), BenchError> {
    let mut run = Run::new(common, 0, false)?;
    let hosts = run.common.hosts.clone();
    let stop = run.stop.subscribe();
    let keep_alive = run.common.keepalive;
    let shared = run.shared.clone();
    run.connect_many("conn", count, &hosts, move |_, _, client| {
        roles::idle(shared.clone(), client, keep_alive, stop.clone())
    })
    .await;
    let deadline = run.connect_deadline(0);
    let total = count as u64;
    run.progress("connect", deadline, |s| {
        Counters::get(&s.counters.connected) + Counters::get(&s.counters.connect_failed) >= total
    })
    .await;
    // Let the broker settle its per-connection state before measuring.
    let settle = Instant::now() + Duration::from_secs(1);
    run.progress("settle", settle, |_| false).await;
    let mut summary = Summary::default();
    if let Some(monitor) = run.monitor.as_mut() {
        let usage = monitor.usage();
        let held = Counters::get(&run.shared.counters.connected)
            .saturating_sub(Counters::get(&run.shared.counters.disconnected));
        if held > 0 {
            let growth = usage.rss_end_kb.saturating_sub(usage.rss_start_kb);
            summary.rss_per_connection = Some(growth as f64 * 1024.0 / held as f64);
        }
        summary.broker_usage = Some(usage);
    }
    let hold_for = Duration::from_secs(hold.min(run.common.duration));
    run.progress("hold", Instant::now() + hold_for, |_| false)
        .await;
    summary.elapsed_s = run.started.elapsed().as_secs_f64();
    run.finish("conn", summary).await
}

/// How long subscribers on other nodes than the publishers are given for
/// their routes to reach the publishers' nodes before publishing starts.
const ROUTE_SETTLE: Duration = Duration::from_secs(1);

/// `pub`, `sub` and `pubsub`: subscribers first (all subscribed), then
/// publishers (all connected), then the measured phase, then the drain.
async fn pubsub(
    common: CommonArgs,
    publish: Option<PublishArgs>,
    subscribe: Option<SubscribeArgs>,
    sub_hosts: Vec<SocketAddr>,
    drain: u64,
) -> Result<(), BenchError> {
    let mode = match (&publish, &subscribe) {
        (Some(_), Some(_)) => "pubsub",
        (Some(_), None) => "pub",
        _ => "sub",
    };
    // With subscribers in the run, the window bounds deliveries not yet
    // received (what is sustainable end to end, whatever the QoS); without
    // them, publishes not yet acknowledged (QoS 1/2).
    let end_to_end = subscribe.is_some();
    let window = publish.as_ref().map_or(0, |p| p.inflight);
    let mut run = Run::new(common, window, end_to_end)?;
    let mut summary = Summary::default();
    let go = watch::channel(false);
    let done = watch::channel(false);

    // Every subscription of the run, to know each publish's fan-out.
    let mut subscriptions = Vec::new();
    let sub_hosts_differ: Vec<SocketAddr> = sub_hosts
        .iter()
        .filter(|h| !run.common.hosts.contains(h))
        .copied()
        .collect();
    if let Some(sub) = &subscribe {
        let hosts = if sub_hosts.is_empty() {
            run.common.hosts.clone()
        } else {
            sub_hosts
        };
        for index in 0..sub.subscribers {
            let id = format!("{}-sub-{}", run.common.prefix, index + 1);
            subscriptions.push(expand(&sub.sub_topic, index + 1, &id));
        }
        let (shared, stop) = (run.shared.clone(), run.stop.subscribe());
        let (pattern, sub_qos, timeout) =
            (sub.sub_topic.clone(), qos(sub.sub_qos), run.options.timeout);
        run.connect_many("sub", sub.subscribers, &hosts, move |index, id, client| {
            let filters = vec![expand(&pattern, index + 1, &id)];
            roles::subscriber(
                shared.clone(),
                client,
                filters,
                sub_qos,
                timeout,
                Measure::Payload,
                stop.clone(),
            )
        })
        .await;
        let total = sub.subscribers as u64;
        let deadline = run.connect_deadline(0);
        run.progress("subscribe", deadline, |s| {
            let c = &s.counters;
            Counters::get(&c.subscribed)
                + Counters::get(&c.connect_failed)
                + Counters::get(&c.disconnected)
                >= total
        })
        .await;
        summary.subscribers = total;
        if !sub_hosts_differ.is_empty() {
            // Subscribers on other nodes than the publishers: their routes
            // reach the publishers' nodes through the cluster's tables.
            let settle = Instant::now() + ROUTE_SETTLE;
            run.progress("routes", settle, |_| false).await;
        }
    }

    let mut fanouts = Vec::new();
    if let Some(publ) = &publish {
        let hosts = run.common.hosts.clone();
        let per_publisher_rate = publ.rate as f64 / publ.publishers.max(1) as f64;
        for index in 0..publ.publishers {
            let id = format!("{}-pub-{}", run.common.prefix, index + 1);
            let fanout = pattern::fanout(&expand(&publ.topic, index + 1, &id), &subscriptions);
            if end_to_end && window > 0 && fanout > u64::from(window) {
                return Err(BenchError::Usage(format!(
                    "--inflight {window} is below the fan-out of one publish ({fanout})"
                )));
            }
            fanouts.push(fanout);
        }
        let fanouts = Arc::new(fanouts);
        let shared = run.shared.clone();
        let signals = roles::PublisherSignals {
            go: go.1.clone(),
            done: done.1.clone(),
            stop: run.stop.subscribe(),
        };
        let publ2 = publ.clone();
        run.connect_many("pub", publ.publishers, &hosts, move |index, id, client| {
            let plan = PublishPlan {
                topic: expand(&publ2.topic, index + 1, &id),
                size: publ2.size,
                qos: qos(publ2.qos),
                retain: publ2.retain,
                rate: per_publisher_rate,
                count: publ2.count,
                fanout: fanouts[index],
            };
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            roles::publisher(shared.clone(), index, client, plan, signals.clone())
        })
        .await;
        let total = (publ.publishers + summary.subscribers as usize) as u64;
        let deadline = run.connect_deadline(0);
        run.progress("connect", deadline, |s| {
            Counters::get(&s.counters.connected) + Counters::get(&s.counters.connect_failed)
                >= total
        })
        .await;
        summary.publishers = publ.publishers as u64;
        summary.qos = publ.qos;
        summary.payload_size = publ.size.max(super::payload::HEADER_LEN);
    }

    // Measured phase.
    if let Some(monitor) = run.monitor.as_mut() {
        monitor.begin_phase();
    }
    let phase_start = Instant::now();
    let _ = go.0.send(true);
    let duration = Duration::from_secs(run.common.duration);
    let publishers = summary.publishers;
    run.progress("run", phase_start + duration, |s| {
        publishers > 0 && Counters::get(&s.publishers_done) >= publishers
    })
    .await;
    let _ = done.0.send(true);
    let publish_elapsed = phase_start.elapsed();
    // Let every publisher finish the batch it is writing.
    run.progress("stopping", Instant::now() + Duration::from_secs(2), |s| {
        Counters::get(&s.publishers_done) >= Counters::get(&s.publishers_started)
    })
    .await;
    // Publishers stop; subscribers keep receiving during the drain.
    let sent = Counters::get(&run.shared.counters.sent);
    summary.send_rate = sent as f64 / publish_elapsed.as_secs_f64();
    if publish.is_some() && subscribe.is_some() {
        let expected = Counters::get(&run.shared.expected);
        summary.expected = Some(expected);
        let drain_deadline = Instant::now() + Duration::from_secs(drain);
        run.progress("drain", drain_deadline, |s| {
            let c = &s.counters;
            Counters::get(&c.received).saturating_sub(Counters::get(&c.duplicates)) >= expected
        })
        .await;
    }
    summary.elapsed_s = phase_start.elapsed().as_secs_f64();
    summary.recv_rate = Counters::get(&run.shared.counters.received) as f64 / summary.elapsed_s;
    if publish.is_none() {
        summary.recv_rate =
            Counters::get(&run.shared.counters.received) as f64 / publish_elapsed.as_secs_f64();
    }
    run.finish(mode, summary).await
}

/// `storm`: publish `retained` retained messages (QoS 1), then connect
/// `subscribers` that each receive all of them; then clear them.
async fn storm(
    common: CommonArgs,
    retained: usize,
    topic: String,
    subscribers: usize,
    sub_topic: String,
    size: usize,
) -> Result<(), BenchError> {
    let mut run = Run::new(common, 0, false)?;
    let host = *run
        .common
        .hosts
        .first()
        .ok_or_else(|| BenchError::Usage("no --host".into()))?;
    let source = run.sources.first().copied();
    let id = format!("{}-retainer", run.common.prefix);
    let topics: Vec<String> = (1..=retained).map(|i| expand(&topic, i, &id)).collect();
    let mut retainer = Client::connect(host, source, &id, &run.options).await?;
    store_retained(&mut retainer, &topics, size, false).await?;
    Counters::add(&run.shared.counters.sent, retained as u64);
    Counters::add(&run.shared.counters.acked, retained as u64);
    eprintln!("girder bench: {retained} retained messages stored");

    if let Some(monitor) = run.monitor.as_mut() {
        monitor.begin_phase();
    }
    let phase_start = Instant::now();
    let (shared, stop, timeout) = (
        run.shared.clone(),
        run.stop.subscribe(),
        run.options.timeout,
    );
    let hosts = run.common.hosts.clone();
    let expected = retained as u64;
    run.connect_many("storm", subscribers, &hosts, move |index, id, client| {
        let filters = vec![expand(&sub_topic, index + 1, &id)];
        let measure = Measure::UntilComplete(expected);
        roles::subscriber(
            shared.clone(),
            client,
            filters,
            QoS::AtLeastOnce,
            timeout,
            measure,
            stop.clone(),
        )
    })
    .await;
    let deadline = phase_start + Duration::from_secs(run.common.duration);
    let total = subscribers as u64;
    run.progress("storm", deadline, |s| {
        let c = &s.counters;
        Counters::get(&s.subscribers_done)
            + Counters::get(&c.connect_failed)
            + Counters::get(&c.disconnected)
            >= total
    })
    .await;
    let elapsed = phase_start.elapsed().as_secs_f64();
    let mut summary = Summary {
        subscribers: total,
        publishers: 1,
        qos: 1,
        payload_size: size.max(super::payload::HEADER_LEN),
        elapsed_s: elapsed,
        expected: Some(expected * total),
        recv_rate: Counters::get(&run.shared.counters.received) as f64 / elapsed,
        ..Summary::default()
    };
    summary.broker_usage = run.monitor.as_mut().map(Monitor::usage);
    // Clear the retained messages so that later runs start clean (after the
    // subscribers are gone, so that they do not count the clearing).
    run.stop_tasks().await;
    store_retained(&mut retainer, &topics, 0, true).await?;
    run.finish("storm", summary).await
}

/// Publishes one retained QoS 1 message per topic (empty ones to clear)
/// and waits for every PUBACK.
async fn store_retained(
    client: &mut Client,
    topics: &[String],
    size: usize,
    clear: bool,
) -> Result<(), BenchError> {
    use girder_broker::codec::{ByteStr, Packet, Publish, PublishProperties};
    const WINDOW: usize = 500;
    let mut acked = 0;
    let mut sent = 0;
    while acked < topics.len() {
        while sent < topics.len() && sent - acked < WINDOW {
            let payload = if clear {
                bytes::Bytes::new()
            } else {
                // Each retained message is its own stream: publisher = its
                // number, sequence 0, so receivers count distinct messages.
                let stamp = super::payload::Stamp {
                    sent_ns: super::payload::now_ns(),
                    publisher: u32::try_from(sent).unwrap_or(u32::MAX),
                    sequence: 0,
                };
                super::payload::encode(stamp, size)
            };
            client.writer.queue(&Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: ByteStr::copy_from_str(&topics[sent]),
                packet_id: Some(u16::try_from(sent % 60_000 + 1).unwrap_or(1)),
                payload,
                properties: PublishProperties::default(),
            }))?;
            sent += 1;
        }
        client.writer.flush().await?;
        match client.reader.next().await? {
            Some(Packet::PubAck(_)) => acked += 1,
            Some(_) => {}
            None => return Err(BenchError::Closed),
        }
    }
    Ok(())
}
