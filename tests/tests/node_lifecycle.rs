//! The `girder` binary as an operator meets it: start-up, clean stop on
//! SIGTERM and SIGINT, start-up errors, config checking, log formats.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use girder_tests::node::{free_port, girder_bin, NodeOptions, NodeProcess};

fn run(args: &[&str]) -> Result<Output> {
    Command::new(girder_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running girder {args:?}"))
}

#[test]
fn sigterm_stops_the_node_cleanly() -> Result<()> {
    let mut node = NodeProcess::start()?;
    node.signal("TERM")?;
    let code = node.wait_exit(Duration::from_secs(20))?;
    assert_eq!(code, Some(0), "log: {}", node.log());
    assert!(node.log().contains("node_stopped"), "log: {}", node.log());
    Ok(())
}

#[test]
fn sigint_stops_the_node_cleanly() -> Result<()> {
    let mut node = NodeProcess::start()?;
    node.signal("INT")?;
    let code = node.wait_exit(Duration::from_secs(20))?;
    assert_eq!(code, Some(0), "log: {}", node.log());
    Ok(())
}

#[test]
fn a_port_in_use_stops_start_up_with_a_clear_error() -> Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let out = run(&[
        "start",
        "--set",
        &format!("node.data_dir=\"{}\"", dir.path().display()),
        "--set",
        &format!("listeners.tcp.default.bind=\"127.0.0.1:{port}\""),
        "--set",
        "admin.bind=\"127.0.0.1:0\"",
        "--set",
        "cluster.dist.bind=\"127.0.0.1:0\"",
    ])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tcp:default") && stderr.contains(&port.to_string()),
        "stderr: {stderr}"
    );
    Ok(())
}

#[test]
fn a_bad_config_file_names_the_key_and_the_problem() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.conf");
    std::fs::File::create(&path)?.write_all(b"mqtt {\n  max_packet_size = 12XB\n}\n")?;
    let path = path.to_string_lossy().into_owned();

    let check = run(&["check-config", &path])?;
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("mqtt.max_packet_size") && stderr.contains("12XB"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let start = run(&["start", "-c", &path])?;
    assert!(!start.status.success());
    assert!(String::from_utf8_lossy(&start.stderr).contains("mqtt.max_packet_size"));
    Ok(())
}

#[test]
fn the_generated_config_passes_check_config() -> Result<()> {
    let generated = run(&["generate-config"])?;
    assert!(generated.status.success());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("girder.conf");
    std::fs::write(&path, &generated.stdout)?;
    let check = run(&["check-config", &path.to_string_lossy()])?;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    Ok(())
}

#[test]
fn json_logs_are_one_object_per_line_without_colour_codes() -> Result<()> {
    let node = NodeProcess::start_with(NodeOptions {
        extra_config: "log.console.formatter = json\n".to_owned(),
        ..NodeOptions::default()
    })?;
    let log = node.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "no JSON lines: {log}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a non-terminal log"
    );
    Ok(())
}

#[test]
fn environment_overrides_the_file() -> Result<()> {
    let node = NodeProcess::start_with(NodeOptions {
        env: vec![(
            "GIRDER_NODE__NAME".to_owned(),
            "envnode@127.0.0.1".to_owned(),
        )],
        ..NodeOptions::default()
    })?;
    assert!(node.log().contains("envnode@127.0.0.1"), "{}", node.log());
    Ok(())
}

#[test]
fn security_settings_the_node_cannot_honour_are_refused_not_ignored() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "listeners.ssl.default {\n  enable = true\n  bind = 8883\n  ssl_options { certfile = \"etc/cert.pem\", keyfile = \"etc/key.pem\" }\n}\n",
            "listeners.ssl.default.enable",
        ),
        (
            "authentication = [\n  { mechanism = password_based, backend = built_in_database,\n    bootstrap_file = \"etc/users.csv\" }\n]\n",
            "authentication.1.enable",
        ),
        (
            "authorization {\n  no_match = allow\n  sources = [{ type = file, path = \"etc/acl.conf\" }]\n}\n",
            "authorization.sources.1.enable",
        ),
        ("authorization.no_match = deny\n", "authorization.no_match"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("secure{i}.conf"));
        std::fs::write(&path, text)?;
        let path = path.to_string_lossy().into_owned();
        for args in [vec!["check-config", &path], vec!["start", "-c", &path]] {
            let out = run(&args)?;
            assert!(!out.status.success(), "{args:?} accepted {text}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(key) && stderr.contains("not supported yet"),
                "{args:?}: {stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        }
    }
    Ok(())
}

#[test]
fn admin_enable_false_serves_no_admin_endpoint() -> Result<()> {
    // The admin port is configured (and must stay closed); the others are
    // port 0, as the node reports them.
    let admin = free_port();
    let node = NodeProcess::start_with(NodeOptions {
        extra_config: format!("admin.enable = false\nadmin.bind = \"127.0.0.1:{admin}\"\n"),
        env: Vec::new(),
    })?;
    assert!(
        node.listener("admin").is_none(),
        "the node reports an admin endpoint: {:?}",
        node.listeners
    );
    let admin_up = std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok();
    assert!(
        !admin_up,
        "admin.enable = false, yet the admin port answers"
    );
    Ok(())
}

#[test]
fn the_default_cookie_on_a_reachable_dist_port_is_warned_about() -> Result<()> {
    let warning = "node.cookie is the default";
    let open = NodeProcess::start_with(NodeOptions {
        extra_config: "cluster.dist.bind = \"0.0.0.0:0\"\n".into(),
        env: Vec::new(),
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !open.log().contains(warning) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(open.log().contains(warning), "{}", open.log());
    // On loopback (the harness's default) there is nobody else to join.
    let closed = NodeProcess::start()?;
    assert!(!closed.log().contains(warning), "{}", closed.log());
    Ok(())
}
