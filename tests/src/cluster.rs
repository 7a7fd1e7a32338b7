//! Multi-process clusters: each node a child process on its own loopback
//! address (127.0.K.N, dist port 4370 + N, admin port 18083), inspected and
//! driven through `ctl --json`. Every child is killed when its handle drops.
//!
//! The binary is `$GIRDER_DIST_NODE_BIN`, else the `dist_node` example of
//! girder-cluster under `$CARGO_TARGET_DIR` (build it with
//! `cargo build -p girder-cluster --example dist_node`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The node binary.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("GIRDER_DIST_NODE_BIN") {
        return p.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    PathBuf::from(target).join("debug/examples/dist_node")
}

/// How to start one node.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Subnet byte K of 127.0.K.N: one per test, so tests run in parallel.
    pub subnet: u8,
    /// N: the node's number (`nN@127.0.K.N`).
    pub n: u8,
    /// `node.cookie`.
    pub cookie: String,
    /// Static seeds, as node numbers in the same subnet.
    pub seeds: Vec<u8>,
}

impl Spec {
    /// A node with the default cookie and no seeds.
    pub fn new(subnet: u8, n: u8) -> Self {
        Self {
            subnet,
            n,
            cookie: "girder".into(),
            seeds: Vec::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> String {
        name(self.subnet, self.n)
    }

    /// Its admin endpoint.
    pub fn admin(&self) -> String {
        format!("127.0.{}.{}:18083", self.subnet, self.n)
    }
}

/// `nN@127.0.K.N`.
pub fn name(subnet: u8, n: u8) -> String {
    format!("n{n}@127.0.{subnet}.{n}")
}

/// A running node process; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Node {
    /// How it was started.
    pub spec: Spec,
    child: Option<Child>,
}

impl Node {
    /// Starts a node and waits until its admin endpoint answers.
    pub fn start(spec: Spec) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary());
        cmd.args([
            "node",
            "--name",
            &spec.name(),
            "--cookie",
            &spec.cookie,
            "--fault-injection",
        ])
        .args([
            "--dist",
            &format!(
                "127.0.{}.{}:{}",
                spec.subnet,
                spec.n,
                4370 + u16::from(spec.n)
            ),
        ])
        .args(["--admin", &spec.admin()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for s in &spec.seeds {
            cmd.args(["--seed", &name(spec.subnet, *s)]);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", binary().display()))?;
        let node = Self {
            spec,
            child: Some(child),
        };
        node.wait_for("the admin endpoint", |n| n.ctl(&["status"]).is_ok())?;
        Ok(node)
    }

    /// Kills the process with SIGKILL (`kill -9`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `ctl --json ARGS` against this node; the parsed JSON.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let out = Command::new(binary())
            .args(["ctl", "--json", "--node", &self.spec.admin()])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// `(running, stopped)` node names, sorted.
    pub fn members(&self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let v = self.ctl(&["cluster", "status"])?;
        let list = |k: &str| {
            let mut l: Vec<String> = v[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            l.sort();
            l
        };
        Ok((list("running_nodes"), list("stopped_nodes")))
    }

    /// Polls `check` every 100 ms for at most ten seconds.
    pub fn wait_for(&self, what: &str, mut check: impl FnMut(&Self) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) {
            if Instant::now() > deadline {
                bail!("{}: timed out waiting for {what}", self.spec.name());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
