//! A cluster of `rlog_node` processes (girder-cluster's example that runs
//! the distribution layer and the replicated tables), driven by its line
//! protocol. Each node is killed and reaped when dropped. [`history`] holds
//! the concurrent history test's records and checks.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::node::free_port_on;

pub mod history;

fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("target"))
}

/// The value of `name` in `shard`'s entry of an rlog node's `status`
/// answer (the text up to the next `,`, space or `}`), if present.
pub fn shard_field(status: &str, shard: &str, name: &str) -> Option<String> {
    let at = status.find(&format!("shard: \"{shard}\""))?;
    let rest = &status[at..];
    let f = rest.find(&format!("{name}: "))?;
    rest[f + name.len() + 2..]
        .split([',', ' ', '}'])
        .next()
        .map(str::to_owned)
}

/// Path of the `rlog_node` example, built on first use (`RLOG_NODE_BIN`
/// overrides it).
pub fn rlog_node_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RLOG_NODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let _ = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "girder-cluster",
                "--example",
                "rlog_node",
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status();
    });
    let path = target_dir()
        .join("debug")
        .join("examples")
        .join("rlog_node");
    if !path.exists() {
        bail!("{} is missing", path.display());
    }
    Ok(path)
}

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// `name@IP`, IP being the cluster's own loopback address.
    pub name: String,
    /// Its distribution port.
    pub port: u16,
    /// `core` or `replicant`.
    pub role: String,
}

/// One running `rlog_node`.
#[derive(Debug)]
pub struct RlogNode {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Its spec.
    pub spec: NodeSpec,
}

impl RlogNode {
    /// Sends one command and returns its answer line.
    pub fn cmd(&mut self, line: &str) -> Result<String> {
        self.cmd_within(line, Duration::from_secs(40))
    }

    /// [`cmd`](Self::cmd) with another time limit (bulk loads).
    pub fn cmd_within(&mut self, line: &str, limit: Duration) -> Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        self.lines
            .recv_timeout(limit)
            .with_context(|| format!("{}: no answer to {line:?}", self.spec.name))
    }

    /// Polls `line` until `ok` accepts the answer, or fails after `within`.
    pub fn wait_for(
        &mut self,
        line: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let a = self.cmd(line)?;
            if ok(&a) {
                return Ok(a);
            }
            if Instant::now() > deadline {
                bail!("{}: {line:?} still answers {a:?}", self.spec.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RlogNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address of this process's own, `127.X.Y.1` with X in
/// 200..=254 (the cluster tests' subnets are below 200): ports probed free on
/// it cannot be taken by another test process or by an outgoing connection
/// (those leave from 127.0.0.1) before a node binds them.
fn own_loopback_address() -> std::net::Ipv4Addr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let h = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt)
        .wrapping_add(n.wrapping_mul(40_503));
    let x = 200 + (h % 55) as u8;
    let y = ((h / 55) % 256) as u8;
    std::net::Ipv4Addr::new(127, x, y, 1)
}

/// A cluster of cores and replicants on loopback.
#[derive(Debug)]
pub struct RlogCluster {
    /// The nodes, cores first; `None` while stopped.
    pub nodes: Vec<Option<RlogNode>>,
    specs: Vec<NodeSpec>,
    /// The loopback address every node of this cluster binds.
    ip: std::net::Ipv4Addr,
    /// Removed on drop unless `RLOG_KEEP` is set (then its path is printed).
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RlogCluster {
    /// Starts `cores` cores and `replicants` replicants, and waits until
    /// every node answers and is linked to every other.
    pub fn start(cores: usize, replicants: usize, extra: &[&str]) -> Result<Self> {
        let ip = own_loopback_address();
        let mut specs = Vec::new();
        for i in 1..=cores {
            specs.push(NodeSpec {
                name: format!("c{i}@{ip}"),
                port: free_port_on(ip)?,
                role: "core".into(),
            });
        }
        for i in 1..=replicants {
            specs.push(NodeSpec {
                name: format!("r{i}@{ip}"),
                port: free_port_on(ip)?,
                role: "replicant".into(),
            });
        }
        let mut c = Self {
            nodes: Vec::new(),
            specs,
            ip,
            dir: tempfile::Builder::new()
                .prefix("girder-rlog-")
                .disable_cleanup(std::env::var_os("RLOG_KEEP").is_some())
                .tempdir()?,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        eprintln!("rlog cluster dir: {}", c.dir.path().display());
        for i in 0..c.specs.len() {
            let n = c.spawn_retrying(i)?;
            c.nodes.push(Some(n));
        }
        c.wait_linked(Duration::from_secs(20))?;
        Ok(c)
    }

    /// Waits until every running node has a link to every other running
    /// node.
    pub fn wait_linked(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let running: Vec<String> = self
                .nodes
                .iter()
                .flatten()
                .map(|n| n.spec.name.clone())
                .collect();
            let mut missing = Vec::new();
            for n in self.nodes.iter_mut().flatten() {
                let links = n.cmd("links")?;
                let up: Vec<&str> = links
                    .trim_start_matches("links")
                    .trim()
                    .split(',')
                    .collect();
                for other in &running {
                    if *other != n.spec.name && !up.contains(&other.as_str()) {
                        missing.push(format!("{} -> {other}", n.spec.name));
                    }
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("links still missing: {missing:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&self, i: usize) -> Result<RlogNode> {
        let spec = self.specs[i].clone();
        let mut cmd = Command::new(rlog_node_bin()?);
        cmd.arg("--name")
            .arg(&spec.name)
            .arg("--dist")
            .arg(format!("{}:{}", self.ip, spec.port))
            .arg("--role")
            .arg(&spec.role)
            .arg("--data-dir")
            .arg(self.dir.path().join(&spec.name));
        for s in &self.specs {
            let flag = if s.role == "core" { "--core" } else { "--seed" };
            cmd.arg(flag).arg(format!("{}:{}", s.name, s.port));
        }
        cmd.args(&self.extra);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", spec.name)))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let node = RlogNode {
            child,
            stdin,
            lines: rx,
            spec,
        };
        let first = node
            .lines
            .recv_timeout(Duration::from_secs(30))
            .context("node did not start")?;
        if first != "ready" {
            bail!("{}: unexpected first line {first:?}", node.spec.name);
        }
        Ok(node)
    }

    /// The node at `i`; fails if it is stopped.
    pub fn node(&mut self, i: usize) -> Result<&mut RlogNode> {
        self.nodes[i]
            .as_mut()
            .ok_or_else(|| anyhow!("node {i} is stopped"))
    }

    /// The name of node `i` (`c1@IP`, ..., then `r1@IP`, ...).
    pub fn name(&self, i: usize) -> &str {
        &self.specs[i].name
    }

    /// The node named `name`'s index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Starts node `i` again with the same name and data dir, on the same
    /// port (see [`Self::spawn_retrying`]).
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i] = None;
        let n = self.spawn_retrying(i)?;
        self.nodes[i] = Some(n);
        Ok(())
    }

    /// Spawns node `i` on its port; if it does not start (on the cluster's
    /// own address nothing else should hold the port, but a start can fail)
    /// it tries again, on another free port.
    /// The nodes that were told the old port are found all the same: the
    /// node dials them, and Raft voters are names, not addresses.
    fn spawn_retrying(&mut self, i: usize) -> Result<RlogNode> {
        let mut tries = 0;
        loop {
            match self.spawn(i) {
                Ok(n) => return Ok(n),
                Err(e) if tries < 3 => {
                    tries += 1;
                    let port = free_port_on(self.ip)?;
                    eprintln!(
                        "{} did not start on port {} ({e:#}); trying port {port}",
                        self.specs[i].name, self.specs[i].port
                    );
                    self.specs[i].port = port;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Cuts node `i` off from every other node (both directions refused),
    /// and waits until it has no link left: a cut that races with a
    /// handshake in flight can leave a link up, so it is cut again.
    pub fn isolate(&mut self, i: usize) -> Result<()> {
        let others: Vec<String> = self
            .specs
            .iter()
            .filter(|s| s.name != self.specs[i].name)
            .map(|s| s.name.clone())
            .collect();
        for o in &others {
            self.node(i)?.cmd(&format!("cut {o}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut quiet = 0;
        loop {
            let links = self.node(i)?.cmd("links")?;
            let up: Vec<String> = links
                .trim_start_matches("links")
                .trim()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if up.is_empty() {
                // No link for a second: no handshake was still in flight.
                quiet += 1;
                if quiet == 5 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            quiet = 0;
            if Instant::now() > deadline {
                bail!("{} still linked to {up:?}", self.specs[i].name);
            }
            for o in up {
                self.node(i)?.cmd(&format!("cut {o}"))?;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lifts the faults of `isolate`.
    pub fn heal(&mut self, i: usize) -> Result<()> {
        let others: Vec<String> = self
            .specs
            .iter()
            .filter(|s| s.name != self.specs[i].name)
            .map(|s| s.name.clone())
            .collect();
        for o in others {
            self.node(i)?.cmd(&format!("restore {o}"))?;
        }
        Ok(())
    }

    /// Waits until every running node gives the same answer to `line`,
    /// accepted by `ok`; returns it.
    pub fn converge(
        &mut self,
        line: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let mut answers = Vec::new();
            for n in self.nodes.iter_mut().flatten() {
                answers.push((n.spec.name.clone(), n.cmd(line)?));
            }
            let first = answers.first().map(|a| a.1.clone()).unwrap_or_default();
            if ok(&first) && answers.iter().all(|a| a.1 == first) {
                return Ok(first);
            }
            if Instant::now() > deadline {
                bail!("no convergence on {line:?}: {answers:?}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

/// splitmix64: a small, seeded generator for schedules and workloads.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

impl RlogCluster {
    /// The nodes' names, in index order (cores first).
    pub fn names(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }

    /// Has node `i` accept clients on a loopback port (the `serve`
    /// command) and returns the port.
    pub fn serve(&mut self, i: usize) -> Result<u16> {
        let a = self.node(i)?.cmd("serve")?;
        a.strip_prefix("serving ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("{}: serve answered {a:?}", self.specs[i].name))
    }

    /// The leader of `shard` as the first running core that knows one
    /// reports it.
    pub fn leader(&mut self, shard: &str) -> Result<Option<usize>> {
        for i in 0..self.specs.len() {
            if self.specs[i].role != "core" || self.nodes[i].is_none() {
                continue;
            }
            let s = self.node(i)?.cmd("status")?;
            if let Some(l) = shard_field(&s, shard, "leader") {
                if let Some(j) = self.specs.iter().position(|s| l.contains(&s.name)) {
                    return Ok(Some(j));
                }
            }
        }
        Ok(None)
    }

    /// Sends `fault` (`drop`, `delay MS`, `restore`, `cut`) from node `from`
    /// about node `to`: a one-way fault on the frames `from` sends.
    pub fn fault(&mut self, from: usize, to: usize, fault: &str) -> Result<()> {
        let to = self.specs[to].name.clone();
        let line = match fault.split_once(' ') {
            Some((verb, arg)) => format!("{verb} {to} {arg}"),
            None => format!("{fault} {to}"),
        };
        let a = self.node(from)?.cmd(&line)?;
        if a != "ok" {
            bail!("{}: {line:?} answered {a:?}", self.specs[from].name);
        }
        Ok(())
    }
}

/// A client of an `rlog_node`'s client port (see [`RlogCluster::serve`]):
/// one command at a time, answers bounded by a read timeout.
#[derive(Debug)]
pub struct RlogClient {
    reader: BufReader<std::net::TcpStream>,
}

impl RlogClient {
    /// Connects to `127.0.0.1:port`; every answer must come within `limit`.
    pub fn connect(port: u16, limit: Duration) -> Result<Self> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(limit))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(s),
        })
    }

    /// Sends one command and returns its answer; an error (timeout, closed
    /// connection) leaves the outcome of the command unknown.
    pub fn cmd(&mut self, line: &str) -> Result<String> {
        let s = self.reader.get_mut();
        s.write_all(line.as_bytes())?;
        s.write_all(b"\n")?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            bail!("connection closed");
        }
        Ok(answer.trim_end().to_owned())
    }
}
