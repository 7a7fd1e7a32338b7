//! The log handlers of a running node: `log.console` on stdout and
//! `log.file` in a rotated file, each with its own level and format.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use girder_tests::mqtt::{unique, Connect, RawClient};
use girder_tests::node::{NodeOptions, NodeProcess};

fn start(extra: &str) -> Result<NodeProcess> {
    NodeProcess::start_with(NodeOptions {
        extra_config: extra.to_owned(),
        env: vec![("RUST_LOG".into(), String::new())],
    })
}

/// Waits until the file at `path` holds a line for which `check` holds.
fn wait_line(path: &Path, what: &str, check: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| check(l)) {
            return Ok(line.to_owned());
        }
        if Instant::now() > deadline {
            bail!("no {what} in {}: {text}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn log_file_gets_lines_at_its_own_level_and_format() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("logs").join("girder.log");
    let node = start(&format!(
        "log.console.level = error\n\
         log.file {{ enable = true, level = info, formatter = json, path = {:?} }}\n",
        path.display().to_string()
    ))?;
    let line = wait_line(&path, "node_started", |l| l.contains("node_started"))?;
    let json: serde_json::Value = serde_json::from_str(&line)?;
    assert_eq!(json["level"], "INFO", "{line}");
    // The console handler, at error, has none of it.
    assert!(!node.log().contains("node_started"), "{}", node.log());
    Ok(())
}

#[test]
fn console_enable_false_logs_nothing_on_stdout() -> Result<()> {
    let node = start("log.console.enable = false\n")?;
    let quiet = node.log();
    assert!(quiet.contains("is running"), "{quiet}");
    assert!(!quiet.contains("INFO"), "{quiet}");
    let talking = start("log.console.level = info\n")?;
    let text = talking.log();
    assert!(text.contains("INFO"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_file_rotates_at_its_size_and_keeps_its_count() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("girder.log");
    let mut node = start(&format!(
        "log.file {{ enable = true, level = debug, formatter = text, path = {:?}, \
         rotation_size = 1KB, rotation_count = 2 }}\n",
        path.display().to_string()
    ))?;
    // Debug lines for every connection and packet.
    for _ in 0..40 {
        let c = RawClient::connected(node.mqtt, &Connect::v311(&unique("log"))).await?;
        c.disconnect().await?;
    }
    let rotated = |n: u32| dir.path().join(format!("girder.log.{n}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rotated(2).exists() {
        if Instant::now() > deadline {
            bail!("no girder.log.2 in {}", dir.path().display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A rotation renames the files up one place and then removes the one
    // past the count: stop the node so that none is half done.
    node.signal("TERM")?;
    node.wait_exit(Duration::from_secs(20))?;
    assert!(path.exists());
    assert!(rotated(2).exists());
    assert!(!rotated(3).exists(), "rotation_count = 2 keeps two files");
    let size = std::fs::metadata(rotated(1))?.len();
    assert!(
        (1024..64 * 1024).contains(&size),
        "a rotated file is cut just past 1KB: {size} bytes"
    );
    Ok(())
}

#[test]
fn a_log_file_that_cannot_be_written_stops_start_up_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A directory where the file should be.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path)?;
    let err = start(&format!(
        "log.file {{ enable = true, path = {:?} }}\n",
        path.display().to_string()
    ))
    .expect_err("start-up fails");
    let text = format!("{err:#}");
    assert!(text.contains("log.file.path"), "{text}");
    Ok(())
}
