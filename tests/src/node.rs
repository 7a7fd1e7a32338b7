//! A `girder` node as a child process, for process-level tests.
//!
//! The binary is taken from `GIRDER_BIN` when set (scripts/test.sh sets it),
//! else from the workspace's `target/debug/girder`. Every node gets its own
//! temporary data directory and binds port 0 on loopback (the ports it
//! reports are read from its output), and is killed (and
//! reaped) when its [`NodeProcess`] is dropped, so a failing test leaves
//! nothing running.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Path of the `girder` binary under test.
pub fn girder_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GIRDER_BIN") {
        return PathBuf::from(path);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("target"));
    target.join("debug").join("girder")
}

/// A free TCP port on 127.0.0.1, as the OS hands it out right now.
pub fn free_port() -> u16 {
    free_port_on(std::net::Ipv4Addr::LOCALHOST).unwrap_or(0)
}

/// A port the OS reports free on `ip` right now, and not handed out before
/// by this process: the OS may offer a port again once its probe socket is
/// closed, and a node given the same port for two listeners fails to start.
pub fn free_port_on(ip: std::net::Ipv4Addr) -> Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let listener =
            TcpListener::bind((ip, 0)).with_context(|| format!("no free port on {ip}"))?;
        let port = listener.local_addr()?.port();
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    bail!("no port on {ip} that was not handed out already")
}

/// Options for [`NodeProcess::start`].
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Extra HOCON appended to the generated config file.
    pub extra_config: String,
    /// Extra environment variables for the process.
    pub env: Vec<(String, String)>,
}

/// A running `girder start` process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// MQTT over TCP listener address.
    pub mqtt: SocketAddr,
    /// Admin endpoint address (port 0 when the node serves none).
    pub admin: SocketAddr,
    /// Every listener the node reported, by name (`tcp:default`, `admin`,
    /// `dist`, ...), with the address it bound.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The node's temporary directory (config file, data dir, log).
    pub dir: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts a single node with default settings on free ports.
    pub fn start() -> Result<Self> {
        Self::start_with(NodeOptions::default())
    }

    /// Starts a node with extra config on port 0 everywhere (the OS picks
    /// each port as the node binds it, so no other process can take one in
    /// between), reads the addresses the node reports once it runs, and waits
    /// until its MQTT listener and its admin endpoint accept connections (at
    /// most 20 s).
    pub fn start_with(opts: NodeOptions) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("girder-test-").tempdir()?;
        let conf = dir.path().join("girder.conf");
        let mut file = std::fs::File::create(&conf)?;
        writeln!(
            file,
            "node {{\n  name = \"girder@127.0.0.1\"\n  data_dir = \"{}\"\n}}\n\
             cluster.dist.bind = \"127.0.0.1:0\"\n\
             listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
             admin.bind = \"127.0.0.1:0\"\n\
             log.console.level = info\n{}",
            dir.path().join("data").display(),
            opts.extra_config
        )?;
        let log = std::fs::File::create(dir.path().join("node.log"))?;
        let child = Command::new(girder_bin())
            .arg("start")
            .arg("-c")
            .arg(&conf)
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", girder_bin().display()))?;
        let unknown = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut node = NodeProcess {
            child,
            mqtt: unknown,
            admin: unknown,
            listeners: Vec::new(),
            dir,
        };
        node.wait_listening(Duration::from_secs(20))?;
        Ok(node)
    }

    fn wait_listening(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("girder exited early with {status}: {}", self.log());
            }
            if let Some(listeners) = running_line_listeners(&self.log()) {
                self.mqtt = listener_addr(&listeners, "tcp:default").with_context(|| {
                    format!("no tcp:default in the node's report {listeners:?}")
                })?;
                // `admin.enable = false` leaves the admin endpoint out.
                let admin = listener_addr(&listeners, "admin");
                self.admin = admin.unwrap_or(self.admin);
                self.listeners.clone_from(&listeners);
                // The admin endpoint starts after the listeners: a test that
                // runs `girder ctl` at once must not find it closed.
                let up = |addr: &SocketAddr| {
                    TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok()
                };
                if up(&self.mqtt) && admin.as_ref().is_none_or(up) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "girder did not report its listeners in time: {}",
            self.log()
        )
    }

    /// The node's combined stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// The address the listener `name` reported (`tcp:NAME`, `admin`,
    /// `dist`).
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        listener_addr(&self.listeners, name)
    }

    /// The MQTT port.
    pub fn port(&self) -> u16 {
        self.mqtt.port()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends the signal `sig` (a name `kill` knows: `TERM`, `INT`, ...).
    pub fn signal(&self, sig: &str) -> Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{sig} {} failed", self.pid());
        }
        Ok(())
    }

    /// Waits up to `limit` for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("node still running after {limit:?}: {}", self.log())
    }
}

/// The address of the listener `name` in a node's report.
pub fn listener_addr(listeners: &[(String, SocketAddr)], name: &str) -> Option<SocketAddr> {
    listeners.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
}

/// The listeners a node reports on its `girder ... is running: node N,
/// listeners: NAME ADDR, NAME ADDR, ...` line, as (name, address) pairs;
/// `None` while the line is not written yet.
pub fn running_line_listeners(log: &str) -> Option<Vec<(String, SocketAddr)>> {
    let line = log.lines().find(|l| l.contains(" is running: node "))?;
    let (_, list) = line.split_once("listeners: ")?;
    list.split(", ")
        .map(|entry| {
            let (name, addr) = entry.trim().split_once(' ')?;
            Some((name.to_owned(), addr.parse().ok()?))
        })
        .collect()
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
