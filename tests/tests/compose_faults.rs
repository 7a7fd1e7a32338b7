//! Faults across containers: the cluster of `docker-compose.yml` (3 cores,
//! 2 replicants, image `girder:local` from `scripts/docker-image.sh`) under
//! a killed core, a killed replicant, a node cut off the network, a paused
//! node, and a rolling restart of every node, each under a running QoS 1
//! load of rumqttc clients.
//!
//! Each test: a persistent-session subscriber (clean session false) on one
//! surviving node, a publisher on another sending QoS 1 messages one at a
//! time; every message the broker acknowledged must reach the subscriber.
//! Afterwards every node must see all five members running and hold the
//! subscriber's one route row. Detection and recovery times are printed
//! (`--nocapture` or nextest's output shows them).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use girder_tests::compose::{Compose, SERVICES};
use girder_tests::mqtt::unique;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Sequence numbers, shared between a client task and the test.
type Seqs = Arc<Mutex<BTreeSet<u64>>>;

/// Connects a v3.1.1 client and waits for its CONNACK; returns the client,
/// its event loop and whether the broker had a session.
async fn connect(
    addr: SocketAddr,
    id: &str,
    clean: bool,
) -> Result<(AsyncClient, EventLoop, bool)> {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_clean_session(clean);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(opts, 100);
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await? {
                Event::Incoming(Packet::ConnAck(c)) => return Ok::<_, anyhow::Error>(c),
                _ => continue,
            }
        }
    })
    .await
    .context("no CONNACK within 10 s")??;
    ensure!(
        waited.code == ConnectReturnCode::Success,
        "CONNACK {:?}",
        waited.code
    );
    Ok((client, events, waited.session_present))
}

/// The subscriber: a persistent session whose received sequence numbers
/// land in `got`.
struct Subscriber {
    id: String,
    client: AsyncClient,
    task: JoinHandle<()>,
    got: Seqs,
}

impl Subscriber {
    async fn start(addr: SocketAddr, filter: &str) -> Result<Self> {
        let id = unique("sub");
        let (client, events, _) = connect(addr, &id, false).await?;
        let got = Seqs::default();
        let task = tokio::spawn(Self::pump(events, got.clone()));
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        Ok(Self {
            id,
            client,
            task,
            got,
        })
    }

    /// Reads the event loop (which acknowledges each QoS 1 delivery); on a
    /// connection error it reconnects, keeping the session.
    async fn pump(mut events: EventLoop, got: Seqs) {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(seq) = std::str::from_utf8(&p.payload)
                        .ok()
                        .and_then(|s| s.parse().ok())
                    {
                        got.lock().map(|mut g| g.insert(seq)).unwrap_or_default();
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Disconnects (the session stays) and connects the same client id to
    /// `addr`, which must find the session there (taken over).
    async fn move_to(&mut self, addr: SocketAddr) -> Result<()> {
        self.client.disconnect().await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
        let (client, events, present) = connect(addr, &self.id, false).await?;
        ensure!(
            present,
            "the session of {} did not follow it to {addr}",
            self.id
        );
        self.client = client;
        self.task = tokio::spawn(Self::pump(events, self.got.clone()));
        Ok(())
    }

    fn count(&self) -> usize {
        self.got.lock().map(|g| g.len()).unwrap_or(0)
    }
}

/// The publisher: QoS 1 messages `0, 1, 2, ...` to `topic`, one at a time,
/// to the address in `target` (it reconnects when that changes or its
/// connection fails); the numbers the broker acknowledged land in `acked`.
struct Publisher {
    target: watch::Sender<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    acked: Seqs,
}

impl Publisher {
    fn start(addr: SocketAddr, topic: String) -> Self {
        let (target, target_rx) = watch::channel(addr);
        let (stop, stop_rx) = watch::channel(false);
        let acked = Seqs::default();
        let task = tokio::spawn(Self::run(target_rx, stop_rx, topic, acked.clone()));
        Self {
            target,
            stop,
            task,
            acked,
        }
    }

    async fn run(
        mut target: watch::Receiver<SocketAddr>,
        stop: watch::Receiver<bool>,
        topic: String,
        acked: Seqs,
    ) {
        let mut seq = 0u64;
        while !*stop.borrow() {
            let addr = *target.borrow_and_update();
            let Ok((client, mut events, _)) = connect(addr, &unique("pub"), true).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            while !*stop.borrow() && !target.has_changed().unwrap_or(true) {
                if client
                    .publish(&topic, QoS::AtLeastOnce, false, seq.to_string())
                    .await
                    .is_err()
                {
                    break;
                }
                let ack = tokio::time::timeout(Duration::from_secs(10), async {
                    loop {
                        match events.poll().await {
                            Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                            Ok(_) => {}
                            Err(_) => return false,
                        }
                    }
                })
                .await;
                seq += 1;
                if ack != Ok(true) {
                    break;
                }
                acked
                    .lock()
                    .map(|mut a| a.insert(seq - 1))
                    .unwrap_or_default();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while events.poll().await.is_ok() {}
            })
            .await;
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Waits until `more` further messages are acknowledged.
    async fn wait_more(&self, more: usize) -> Result<()> {
        let want = self.count() + more;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count() < want {
            ensure!(
                Instant::now() < deadline,
                "publisher stalled at {} acknowledged",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops publishing and returns what was acknowledged.
    async fn stop(self) -> BTreeSet<u64> {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        self.acked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// Waits until the subscriber has every acknowledged message.
async fn check_no_loss(sub: &Subscriber, acked: &BTreeSet<u64>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let missing: Vec<u64> = {
            let got = sub.got.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            acked.difference(&got).copied().collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} acknowledged QoS 1 messages never reached the persistent session: {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(20)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cluster with a subscriber on `sub_on` and a publisher on `pub_on`,
/// both running; `fault` does the damage and the repair, then the test
/// checks loss and convergence and prints `fault`'s report.
async fn under_load<F, Fut>(name: &str, sub_on: &str, pub_on: &str, fault: F) -> Result<()>
where
    F: FnOnce(Arc<Compose>, Arc<tokio::sync::Mutex<Subscriber>>, Arc<Publisher>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let compose = Arc::new(Compose::up(name)?);
    let result = async {
        let topic = format!("faults/{}", unique(name));
        let sub = Subscriber::start(compose.mqtt(sub_on)?, &topic).await?;
        compose.wait_converged(&SERVICES, Some(1))?;
        let sub = Arc::new(tokio::sync::Mutex::new(sub));
        let publisher = Arc::new(Publisher::start(compose.mqtt(pub_on)?, topic));
        publisher.wait_more(20).await?;
        fault(compose.clone(), sub.clone(), publisher.clone()).await?;
        publisher.wait_more(20).await?;
        let publisher = Arc::into_inner(publisher).context("publisher still shared")?;
        let acked = publisher.stop().await;
        let sub = sub.lock().await;
        check_no_loss(&sub, &acked).await?;
        eprintln!(
            "{name}: {} QoS 1 messages acknowledged, {} distinct received, none lost",
            acked.len(),
            sub.count()
        );
        let took = compose.wait_converged(&SERVICES, Some(1))?;
        eprintln!("{name}: members and routes agree on every node ({took:?} after the load)");
        Ok(())
    }
    .await;
    if let Err(e) = &result {
        eprintln!("{name} failed: {e:#}\n{}", compose.logs());
    }
    result
}

/// How long each node took: printed as one line per event.
fn report(name: &str, what: &str, took: Duration) {
    eprintln!("{name}: {what} in {:.2} s", took.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_kill_core_and_restart() -> Result<()> {
    under_load("killcore", "replicant1", "core1", |c, _, p| async move {
        c.docker(&["kill"], "core2")?;
        let killed = Instant::now();
        report(
            "killcore",
            "core1 saw core2 stopped",
            c.wait_stopped("core1", "core2")?,
        );
        p.wait_more(20).await?;
        c.docker(&["start"], "core2")?;
        let started = Instant::now();
        report(
            "killcore",
            "core2 healthy after start",
            c.wait_healthy("core2")?,
        );
        c.wait_converged(&SERVICES, Some(1))?;
        report(
            "killcore",
            "cluster converged after start",
            started.elapsed(),
        );
        report(
            "killcore",
            "whole outage (kill to converged)",
            killed.elapsed(),
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_kill_replicant_and_restart() -> Result<()> {
    under_load("killrep", "core3", "core1", |c, _, p| async move {
        c.docker(&["kill"], "replicant2")?;
        let killed = Instant::now();
        report(
            "killrep",
            "core3 saw replicant2 stopped",
            c.wait_stopped("core3", "replicant2")?,
        );
        p.wait_more(20).await?;
        c.docker(&["start"], "replicant2")?;
        let started = Instant::now();
        report(
            "killrep",
            "replicant2 healthy after start",
            c.wait_healthy("replicant2")?,
        );
        c.wait_converged(&SERVICES, Some(1))?;
        report(
            "killrep",
            "cluster converged after start",
            started.elapsed(),
        );
        report(
            "killrep",
            "whole outage (kill to converged)",
            killed.elapsed(),
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_network_cut_and_heal() -> Result<()> {
    under_load("netcut", "replicant1", "core1", |c, _, p| async move {
        c.disconnect("core3")?;
        report(
            "netcut",
            "core1 saw core3 stopped",
            c.wait_stopped("core1", "core3")?,
        );
        p.wait_more(20).await?;
        c.connect("core3")?;
        let healed = Instant::now();
        c.wait_converged(&SERVICES, Some(1))?;
        report(
            "netcut",
            "cluster converged after reconnect",
            healed.elapsed(),
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_pause_past_heartbeat() -> Result<()> {
    under_load("pause", "replicant1", "core2", |c, _, p| async move {
        c.docker(&["pause"], "core3")?;
        // Stopped in another node's view: the heartbeat timeout (2 s) passed.
        report(
            "pause",
            "core2 saw paused core3 stopped",
            c.wait_stopped("core2", "core3")?,
        );
        p.wait_more(20).await?;
        c.docker(&["unpause"], "core3")?;
        let resumed = Instant::now();
        c.wait_converged(&SERVICES, Some(1))?;
        report(
            "pause",
            "cluster converged after unpause",
            resumed.elapsed(),
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t50_rolling_restart_under_load() -> Result<()> {
    under_load(
        "rolling",
        "replicant1",
        "replicant2",
        |c, sub, p| async move {
            let mut sub_on = "replicant1";
            let mut pub_on = "replicant2";
            for (i, node) in SERVICES.iter().enumerate() {
                // Clients leave the node about to restart, as an operator
                // draining it would have them do: the session moves by takeover.
                let other = SERVICES[(i + 1) % SERVICES.len()];
                if sub_on == *node {
                    sub.lock().await.move_to(c.mqtt(other)?).await?;
                    sub_on = other;
                }
                if pub_on == *node {
                    let alt = SERVICES
                        .iter()
                        .find(|s| **s != *node && **s != sub_on)
                        .context("a node")?;
                    p.target.send_replace(c.mqtt(alt)?);
                    pub_on = alt;
                }
                // And waits until every node routes to the session's new
                // node (the old node hands late deliveries on for 2 s, and
                // not once it is stopped).
                c.wait_converged(&SERVICES, Some(1))?;
                p.wait_more(10).await?;
                let restarted = Instant::now();
                c.docker(&["restart", "-t", "10"], node)?;
                c.wait_healthy(node)?;
                c.wait_converged(&SERVICES, Some(1))?;
                report(
                    "rolling",
                    &format!("{node} restarted and cluster converged"),
                    restarted.elapsed(),
                );
            }
            Ok(())
        },
    )
    .await
}
