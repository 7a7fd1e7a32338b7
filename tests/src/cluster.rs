//! Multi-process clusters of the real `girder` binary.
//!
//! Each node is `girder start -c FILE` (the binary from
//! [`crate::node::girder_bin`]) with a generated HOCON file: its own loopback
//! address `127.0.K.N` (K: one subnet per test, so tests run side by side),
//! port 0 for the admin API and the MQTT listener (the node reports the ports
//! it bound, and the file is rewritten with them so that a restart keeps
//! them), a distribution port chosen before the start (the other nodes' seed
//! lists name it; nothing but this test binds on its address), fault
//! injection on, and heartbeats that declare a silent peer down after
//! [`HEARTBEAT_TIMEOUT`]: long enough that a loaded machine does not fake a
//! silence, short enough for a test to wait for. Nodes are inspected and
//! driven through `girder ctl --json`, and every child is killed (SIGKILL) and
//! reaped when its [`Node`] drops.
//!
//! ```no_run
//! use girder_tests::cluster::{specs, Node};
//! # fn main() -> anyhow::Result<()> {
//! let nodes = Node::start_all(specs(70, 3, true)?)?;
//! let all = nodes.iter().map(|n| n.spec.name.as_str());
//! let all = girder_tests::cluster::sorted(all);
//! for n in &nodes {
//!     n.wait_for("three running", |m| m.running == all)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::node::{free_port_on, girder_bin};

/// How long [`Node::wait_for`] polls before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// `cluster.dist.heartbeat_interval` of every test node.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(300);

/// `cluster.dist.heartbeat_timeout` of every test node: a peer silent this
/// long is down. A peer that dies (kill -9) closes its links and is down at
/// once; only a silent one (a `drop` fault) waits this long.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(3000);

/// HOCON for the one kind of test that measures how soon a silent peer is
/// declared down: heartbeats every 200 ms, down after 1.2 s of silence.
pub const QUICK_NODEDOWN: &str =
    "cluster.dist.heartbeat_interval = 200ms\ncluster.dist.heartbeat_timeout = 1200ms\n";

/// How long a silent peer takes to be declared down under
/// [`QUICK_NODEDOWN`].
pub const QUICK_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1200);

/// How one node is configured.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `node.name`: `nN@127.0.K.N`.
    pub name: String,
    /// The loopback address every listener of the node binds.
    pub ip: Ipv4Addr,
    /// `cluster.dist.bind` port.
    pub dist_port: u16,
    /// `admin.bind` port: 0 until the node first started and reported it.
    pub admin_port: u16,
    /// `listeners.tcp.default.bind` port: 0 until the node first started and
    /// reported it.
    pub mqtt_port: u16,
    /// `node.cookie`.
    pub cookie: String,
    /// `cluster.name`.
    pub cluster: String,
    /// `cluster.static.seeds` as `name@host:port`; empty means
    /// `discovery_strategy = manual`.
    pub seeds: Vec<String>,
    /// More HOCON, appended to the generated file (its keys win).
    pub extra: String,
}

impl Spec {
    /// Node N of subnet K on `127.0.K.N`: a free distribution port, port 0
    /// for the others, the cookie `girder-test`, the cluster `girdercl` and
    /// no seeds.
    pub fn new(subnet: u8, n: u8) -> Result<Self> {
        let ip = Ipv4Addr::new(127, 0, subnet, n);
        Ok(Self {
            name: format!("n{n}@{ip}"),
            ip,
            dist_port: free_port_on(ip)?,
            admin_port: 0,
            mqtt_port: 0,
            cookie: "girder-test".into(),
            cluster: "girdercl".into(),
            seeds: Vec::new(),
            extra: String::new(),
        })
    }

    /// `name@host:port`: how seeds and `ctl cluster join` address the node.
    pub fn target(&self) -> String {
        format!("{}:{}", self.name, self.dist_port)
    }

    /// The admin endpoint, as `girder ctl --node` takes it.
    pub fn admin(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.admin_port))
    }

    /// The node's configuration file, with its data under `data_dir`.
    pub fn config(&self, data_dir: &std::path::Path) -> String {
        let strategy = if self.seeds.is_empty() {
            "manual"
        } else {
            "static"
        };
        let seeds = self
            .seeds
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut conf = String::new();
        let _ = write!(
            conf,
            "node {{\n  name = {name:?}\n  cookie = {cookie:?}\n  data_dir = {data:?}\n}}\n\
             cluster {{\n  name = {cluster:?}\n  discovery_strategy = {strategy}\n  \
             static.seeds = [{seeds}]\n  dist {{\n    bind = \"{ip}:{dist}\"\n    \
             heartbeat_interval = {hb}ms\n    heartbeat_timeout = {hbt}ms\n    \
             connect_timeout = 1s\n    fault_injection = true\n  }}\n}}\n\
             listeners.tcp.default.bind = \"{ip}:{mqtt}\"\n\
             admin.bind = \"{ip}:{admin}\"\n\
             log.console.level = info\n{extra}",
            name = self.name,
            cookie = self.cookie,
            data = data_dir.display().to_string(),
            cluster = self.cluster,
            ip = self.ip,
            dist = self.dist_port,
            mqtt = self.mqtt_port,
            admin = self.admin_port,
            hb = HEARTBEAT_INTERVAL.as_millis(),
            hbt = HEARTBEAT_TIMEOUT.as_millis(),
            extra = self.extra,
        );
        conf
    }
}

/// `count` nodes `n1..=nCOUNT` of subnet K; with `static_seeds`, every node
/// lists all of them (itself included, as a shared config file would) as
/// static seeds, otherwise discovery is manual.
pub fn specs(subnet: u8, count: u8, static_seeds: bool) -> Result<Vec<Spec>> {
    let mut specs = (1..=count)
        .map(|n| Spec::new(subnet, n))
        .collect::<Result<Vec<_>>>()?;
    if static_seeds {
        let seeds: Vec<String> = specs.iter().map(Spec::target).collect();
        for s in &mut specs {
            s.seeds.clone_from(&seeds);
        }
    }
    Ok(specs)
}

/// Names, sorted: the shape [`Members`] lists have.
pub fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().map(str::to_owned).collect();
    v.sort();
    v
}

/// `girder ctl cluster status` as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// `running_nodes`, sorted.
    pub running: Vec<String>,
    /// `stopped_nodes`, sorted.
    pub stopped: Vec<String>,
}

impl Members {
    /// Whether `name` is listed at all, running or stopped.
    pub fn knows(&self, name: &str) -> bool {
        self.running.iter().chain(&self.stopped).any(|n| n == name)
    }
}

/// A `girder start` process; killed with SIGKILL and reaped on drop.
#[derive(Debug)]
pub struct Node {
    /// How it is configured.
    pub spec: Spec,
    child: Option<Child>,
    /// Where this run's output starts in the log (runs append to it).
    log_from: u64,
    /// Config file, data dir and log; kept across restarts.
    dir: tempfile::TempDir,
}

impl Node {
    /// Starts one node and waits until its admin endpoint answers.
    pub fn start(spec: Spec) -> Result<Self> {
        let mut node = Self::spawn(spec)?;
        node.wait_started()?;
        Ok(node)
    }

    /// Starts every node first and then waits for each, so that they boot in
    /// parallel.
    pub fn start_all(specs: Vec<Spec>) -> Result<Vec<Self>> {
        let mut nodes = specs
            .into_iter()
            .map(Self::spawn)
            .collect::<Result<Vec<_>>>()?;
        for n in &mut nodes {
            n.wait_started()?;
        }
        Ok(nodes)
    }

    fn spawn(spec: Spec) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("girder-cl-").tempdir()?;
        std::fs::write(
            dir.path().join("girder.conf"),
            spec.config(&dir.path().join("data")),
        )?;
        let mut node = Self {
            spec,
            child: None,
            log_from: 0,
            dir,
        };
        node.launch()?;
        Ok(node)
    }

    fn launch(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        self.log_from = log.metadata()?.len();
        let child = Command::new(girder_bin())
            .arg("start")
            .arg("-c")
            .arg(self.dir.path().join("girder.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", girder_bin().display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls until the node reports its listeners (on a first start, the
    /// ports it bound are written into the spec and its config file), its
    /// admin endpoint accepts and `ctl status` names this node; fails early,
    /// with the log, if the process exits.
    fn wait_started(&mut self) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    bail!("{} exited with {status}: {}", self.spec.name, self.log());
                }
            }
            if self.read_ports()? {
                let admin = self.spec.admin();
                if TcpStream::connect_timeout(&admin, Duration::from_millis(200)).is_ok() {
                    let status = self.ctl(&["status"])?;
                    if status["node"] != self.spec.name.as_str() {
                        bail!("{admin} is {}, not {}", status["node"], self.spec.name);
                    }
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{} did not start in time: {}", self.spec.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reads the listeners this run reported, if it has; on the first run
    /// they fill the spec's port-0 entries and the config file is written
    /// again with them.
    fn read_ports(&mut self) -> Result<bool> {
        let log = std::fs::read(self.log_path())?;
        let from = usize::try_from(self.log_from).unwrap_or(usize::MAX);
        let run = String::from_utf8_lossy(log.get(from..).unwrap_or_default());
        let Some(listeners) = crate::node::running_line_listeners(&run) else {
            return Ok(false);
        };
        let port = |name: &str| {
            crate::node::listener_addr(&listeners, name)
                .map(|a| a.port())
                .with_context(|| format!("{}: no {name} in {listeners:?}", self.spec.name))
        };
        let (mqtt, admin) = (port("tcp:default")?, port("admin")?);
        if (self.spec.mqtt_port, self.spec.admin_port) != (mqtt, admin) {
            if self.spec.mqtt_port != 0 || self.spec.admin_port != 0 {
                bail!(
                    "{} came back on other ports: {listeners:?}, not mqtt {} and admin {}",
                    self.spec.name,
                    self.spec.mqtt_port,
                    self.spec.admin_port
                );
            }
            self.spec.mqtt_port = mqtt;
            self.spec.admin_port = admin;
            std::fs::write(
                self.dir.path().join("girder.conf"),
                self.spec.config(&self.data_dir()),
            )?;
        }
        Ok(true)
    }

    /// Kills the process with SIGKILL (`kill -9`) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same config file and data dir (a
    /// restart of the same node, as after a crash), killing it first if it
    /// still runs; waits until the admin endpoint answers.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch()?;
        self.wait_started()
    }

    /// Runs `girder ctl --json --node ADMIN ARGS`; the parsed JSON output.
    pub fn ctl(&self, args: &[&str]) -> Result<serde_json::Value> {
        ctl_at(&self.spec, args)
    }

    /// Runs a ctl command that must fail; its error output.
    pub fn ctl_fails(&self, args: &[&str]) -> Result<String> {
        let out = self.ctl_raw(args)?;
        if out.status.success() {
            bail!(
                "{}: ctl {args:?} succeeded: {}",
                self.spec.name,
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn ctl_raw(&self, args: &[&str]) -> Result<std::process::Output> {
        ctl_output(&self.spec, args)
    }

    /// The node's data directory (`node.data_dir`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `ctl cluster status`, checked to come from this node.
    pub fn members(&self) -> Result<Members> {
        let v = self.ctl(&["cluster", "status"])?;
        if v["node"] != self.spec.name.as_str() {
            bail!("cluster status from {}, not {}", v["node"], self.spec.name);
        }
        let list = |key: &str| {
            sorted(
                v[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str),
            )
        };
        Ok(Members {
            running: list("running_nodes"),
            stopped: list("stopped_nodes"),
        })
    }

    /// Polls the membership every 100 ms until `check` holds; fails after
    /// [`WAIT`] with the last membership seen. Returns how long it took.
    pub fn wait_for(
        &self,
        what: &str,
        mut check: impl FnMut(&Members) -> bool,
    ) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let seen = self.members();
            if seen.as_ref().is_ok_and(&mut check) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > WAIT {
                bail!(
                    "{}: timed out waiting for {what}; last seen {seen:?}",
                    self.spec.name
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads the membership now and then every 200 ms until `period` has
    /// passed, and fails on the first reading where `check` does not hold.
    pub fn holds_for(
        &self,
        what: &str,
        period: Duration,
        mut check: impl FnMut(&Members) -> bool,
    ) -> Result<()> {
        let end = Instant::now() + period;
        loop {
            let m = self.members()?;
            if !check(&m) {
                bail!("{}: {what} no longer holds: {m:?}", self.spec.name);
            }
            if Instant::now() >= end {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// Everything the node (all its runs) wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `girder ctl --json` against the node of `spec` (usable from a
/// thread that does not own the [`Node`]); the parsed JSON output.
pub fn ctl_at(spec: &Spec, args: &[&str]) -> Result<serde_json::Value> {
    let out = ctl_output(spec, args)?;
    if !out.status.success() {
        bail!(
            "{}: ctl {args:?}: {}",
            spec.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ctl {args:?}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn ctl_output(spec: &Spec, args: &[&str]) -> Result<std::process::Output> {
    Command::new(girder_bin())
        .args(["ctl", "--json", "--node", &spec.admin().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running girder ctl")
}

/// Consensus groups and rows, through `girder ctl` (rows need fault
/// injection, which every test node has).
impl Node {
    /// `shard`'s entry of `ctl cluster status`'s `consensus` list.
    pub fn consensus(&self, shard: &str) -> Result<serde_json::Value> {
        let v = self.ctl(&["cluster", "status"])?;
        v["consensus"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["shard"] == shard)
            .cloned()
            .with_context(|| format!("{}: no consensus shard {shard}: {v}", self.spec.name))
    }

    /// `shard`'s voters as this node reports them, sorted.
    pub fn voters(&self, shard: &str) -> Result<Vec<String>> {
        let g = self.consensus(shard)?;
        Ok(sorted(
            g["voters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str),
        ))
    }

    /// Commits a row through its table's consensus group (`ctl cluster
    /// debug-table put`); the log index.
    pub fn put_row(&self, table: &str, key: &str, value: &str) -> Result<u64> {
        let v = self.ctl(&["cluster", "debug-table", "put", table, key, value])?;
        v["index"]
            .as_u64()
            .with_context(|| format!("no index in {v}"))
    }

    /// This node's copy of a consensus row.
    pub fn get_row(&self, table: &str, key: &str) -> Result<Option<String>> {
        let v = self.ctl(&["cluster", "debug-table", "get", table, key])?;
        Ok(v["value"].as_str().map(str::to_owned))
    }

    /// Polls `check` every 100 ms until it returns true; fails after
    /// `within` with the last error or `what`.
    pub fn wait_until(
        &self,
        what: &str,
        within: Duration,
        mut check: impl FnMut(&Self) -> Result<bool>,
    ) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let seen = check(self);
            if matches!(seen, Ok(true)) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > within {
                bail!(
                    "{}: timed out waiting for {what} (last: {seen:?}); log:\n{}",
                    self.spec.name,
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Node {
    /// Every key of this node's copy of a consensus table.
    pub fn row_keys(&self, table: &str) -> Result<Vec<String>> {
        let v = self.ctl(&["cluster", "debug-table", "keys", table])?;
        Ok(v["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect())
    }
}
