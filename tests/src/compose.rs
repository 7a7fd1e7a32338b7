//! The cluster of the repository's `docker-compose.yml`, brought up under a
//! project name of its own with free host ports, and taken down (containers,
//! network, volumes) when the handle is dropped, whether the test passed or
//! not.
//!
//! The image is `$GIRDER_IMAGE` or `girder:local`, built beforehand by
//! `scripts/docker-image.sh` (`scripts/test.sh` does it). A docker daemon
//! that cannot be reached, or a missing image, is an error that says so:
//! these tests never skip.
//!
//! Nodes are asked through `docker exec <container> girder ctl --json ...`
//! (what `docker compose exec -T` does, without starting a compose client
//! per poll).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};

/// The services of `docker-compose.yml`, cores first.
pub const SERVICES: [&str; 5] = ["core1", "core2", "core3", "replicant1", "replicant2"];

/// How long the cluster may take to start or to converge after a fault.
pub const CONVERGE: Duration = Duration::from_secs(45);

/// A running compose project; dropped, it is taken down with its volumes.
#[derive(Debug)]
pub struct Compose {
    /// The compose project name (unique per run).
    pub project: String,
    cli: Vec<String>,
    root: PathBuf,
    env: Vec<(String, String)>,
    /// Container id of each service (ids survive kill, start and restart).
    ids: BTreeMap<String, String>,
}

/// `running_nodes` and `stopped_nodes` of `ctl cluster status`, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Nodes this node has a live link to, itself included.
    pub running: Vec<String>,
    /// Members this node knows but has no link to.
    pub stopped: Vec<String>,
}

/// The node name of a service (`girder@core1`).
pub fn node_name(service: &str) -> String {
    format!("girder@{service}")
}

/// Runs a command to completion, returning its output (blocking in place
/// when called on a tokio worker).
fn run(cmd: &mut Command) -> Result<Output> {
    let mut go = || cmd.output().with_context(|| format!("running {cmd:?}"));
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(go)
        }
        _ => go(),
    }
}

/// Runs a command and fails with its stderr when it exits non-zero.
fn checked(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A host port free at the moment of asking.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `docker compose` when the plugin is installed, else `docker-compose`.
fn compose_cli() -> Result<Vec<String>> {
    let plugin = Command::new("docker").args(["compose", "version"]).output();
    if plugin.is_ok_and(|o| o.status.success()) {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    let v1 = Command::new("docker-compose").arg("version").output();
    if v1.is_ok_and(|o| o.status.success()) {
        return Ok(vec!["docker-compose".into()]);
    }
    bail!("neither `docker compose` nor `docker-compose` runs on this machine")
}

impl Compose {
    /// Brings the cluster up as project `girder-<name>-<pid>` with free host
    /// ports, short heartbeats (`heartbeat_interval` 500ms, timeout 2s) and a
    /// random cookie, and waits until every node is healthy and sees all
    /// five. Fails clearly when docker or the image is missing.
    pub fn up(name: &str) -> Result<Self> {
        let info = run(Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]));
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => bail!(
                "the docker daemon is not reachable (these tests need it): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => bail!("docker is not installed (these tests need it): {e:#}"),
        }
        let image = std::env::var("GIRDER_IMAGE").unwrap_or_else(|_| "girder:local".into());
        let inspect = run(Command::new("docker").args(["image", "inspect", &image]))?;
        ensure!(
            inspect.status.success(),
            "no docker image {image}: build it with scripts/docker-image.sh"
        );
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace root")?
            .to_path_buf();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let env = vec![
            ("GIRDER_IMAGE".into(), image),
            ("GIRDER_MQTT_PORT".into(), free_port()?.to_string()),
            ("GIRDER_ADMIN_PORT".into(), free_port()?.to_string()),
            ("GIRDER_COOKIE".into(), format!("cookie-{nanos:x}")),
            ("GIRDER_HEARTBEAT_INTERVAL".into(), "500ms".into()),
            ("GIRDER_HEARTBEAT_TIMEOUT".into(), "2s".into()),
            ("GIRDER_OWNED_ROWS_GRACE_PERIOD".into(), "30s".into()),
        ];
        let mut compose = Self {
            project: format!("girder-{name}-{}-{nanos:x}", std::process::id()),
            cli: compose_cli()?,
            root,
            env,
            ids: BTreeMap::new(),
        };
        compose.compose(&["up", "-d"])?;
        for service in SERVICES {
            let id = compose.compose(&["ps", "-q", service])?.trim().to_owned();
            ensure!(!id.is_empty(), "no container for {service}");
            compose.ids.insert(service.into(), id);
        }
        let took = compose.wait_converged(&SERVICES, None)?;
        eprintln!("{}: cluster of 5 up in {took:?}", compose.project);
        Ok(compose)
    }

    /// Runs a compose subcommand of this project.
    pub fn compose(&self, args: &[&str]) -> Result<String> {
        let file = self.root.join("docker-compose.yml");
        let mut cmd = Command::new(&self.cli[0]);
        cmd.args(&self.cli[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        checked(&mut cmd)
    }

    /// The container id of a service.
    pub fn id(&self, service: &str) -> &str {
        self.ids.get(service).map_or("", String::as_str)
    }

    /// Runs `docker ARGS... <container of service>`.
    pub fn docker(&self, args: &[&str], service: &str) -> Result<String> {
        checked(Command::new("docker").args(args).arg(self.id(service)))
    }

    /// The compose network the containers are on.
    pub fn network(&self) -> String {
        format!("{}_default", self.project)
    }

    /// Cuts a node off the compose network.
    pub fn disconnect(&self, service: &str) -> Result<()> {
        checked(Command::new("docker").args([
            "network",
            "disconnect",
            "-f",
            &self.network(),
            self.id(service),
        ]))?;
        Ok(())
    }

    /// Connects a node back, under its service name (the alias the other
    /// nodes resolve).
    pub fn connect(&self, service: &str) -> Result<()> {
        checked(Command::new("docker").args([
            "network",
            "connect",
            "--alias",
            service,
            &self.network(),
            self.id(service),
        ]))?;
        Ok(())
    }

    /// The host address of a service's MQTT port (docker picks the port of
    /// every node but core1's, again after each restart).
    pub fn mqtt(&self, service: &str) -> Result<SocketAddr> {
        let out = checked(Command::new("docker").args(["port", self.id(service), "1883/tcp"]))?;
        let line = out
            .lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .with_context(|| format!("{service}: no published MQTT port in {out:?}"))?;
        Ok(line.trim().parse()?)
    }

    /// `girder ctl --json ARGS` inside a service's container.
    pub fn ctl(&self, service: &str, args: &[&str]) -> Result<serde_json::Value> {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", self.id(service), "girder", "ctl", "--json"])
            .args(args);
        let out = checked(&mut cmd)?;
        serde_json::from_str(&out).with_context(|| format!("{service}: ctl printed {out:?}"))
    }

    /// A node's view of the membership.
    pub fn members(&self, service: &str) -> Result<Members> {
        let v = self.ctl(service, &["cluster", "status"])?;
        let list = |key: &str| {
            let mut l: Vec<String> = v[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect();
            l.sort();
            l
        };
        Ok(Members {
            running: list("running_nodes"),
            stopped: list("stopped_nodes"),
        })
    }

    /// The `routes` row count a node holds (`ctl status` tables.routes).
    pub fn routes(&self, service: &str) -> Result<u64> {
        self.ctl(service, &["status"])?["tables"]["routes"]
            .as_u64()
            .with_context(|| format!("{service}: no tables.routes"))
    }

    /// Polls every 200 ms until every service in `on` sees all five nodes
    /// running and none stopped, and (when `routes` is given) holds that
    /// many route rows. Returns how long it took; fails after [`CONVERGE`]
    /// with the last thing seen.
    pub fn wait_converged(&self, on: &[&str], routes: Option<u64>) -> Result<Duration> {
        let start = Instant::now();
        let mut all: Vec<String> = SERVICES.iter().map(|s| node_name(s)).collect();
        all.sort();
        loop {
            let mut last = String::new();
            for service in on {
                match self.members(service) {
                    Ok(m) if m.running == all && m.stopped.is_empty() => {}
                    Ok(m) => last = format!("{service} sees {m:?}"),
                    Err(e) => last = format!("{service}: {e:#}"),
                }
                if !last.is_empty() {
                    break;
                }
                if let Some(want) = routes {
                    match self.routes(service) {
                        Ok(n) if n == want => {}
                        Ok(n) => last = format!("{service} holds {n} route rows, not {want}"),
                        Err(e) => last = format!("{service}: {e:#}"),
                    }
                }
                if !last.is_empty() {
                    break;
                }
            }
            if last.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > CONVERGE {
                bail!("not converged after {CONVERGE:?}: {last}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until `observer` lists `node` as stopped; returns how long it
    /// took.
    pub fn wait_stopped(&self, observer: &str, service: &str) -> Result<Duration> {
        let start = Instant::now();
        let name = node_name(service);
        loop {
            let seen = self.members(observer);
            if let Ok(m) = &seen {
                if m.stopped.contains(&name) && !m.running.contains(&name) {
                    return Ok(start.elapsed());
                }
            }
            if start.elapsed() > CONVERGE {
                bail!("{observer} never saw {name} stopped: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until the service's container reports healthy (its
    /// healthcheck: `girder ctl status`).
    pub fn wait_healthy(&self, service: &str) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let health = self.docker(
                &["inspect", "--format", "{{.State.Health.Status}}"],
                service,
            );
            if health.as_deref().is_ok_and(|h| h.trim() == "healthy") {
                return Ok(start.elapsed());
            }
            if start.elapsed() > CONVERGE {
                bail!("{service} not healthy after {CONVERGE:?}: {health:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every container's log, for a failure message.
    pub fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--tail", "30"])
            .unwrap_or_else(|e| format!("(no logs: {e:#})"))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        // Unpause first: a paused container cannot be stopped.
        for service in SERVICES {
            let _ = run(Command::new("docker").args(["unpause", self.id(service)]));
        }
        if let Err(e) = self.compose(&["down", "-v", "--remove-orphans", "-t", "5"]) {
            eprintln!("{}: down failed: {e:#}", self.project);
        }
    }
}
