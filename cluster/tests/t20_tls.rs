//! Mutual TLS on the links: in-process nodes on loopback, with a CA and node
//! certificates made at test time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use girder_cluster::{
    start, Backoff, ClusterError, ClusterHandle, ClusterOptions, DistTls, Payload, ECHO,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

const SECOND: Duration = Duration::from_secs(1);

/// A certificate authority whose files live in a temporary directory.
struct Ca {
    dir: TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        Self { dir, issuer }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Writes `<file>.crt` and `<file>.key`: a node certificate for the
    /// loopback address, usable as server and as client.
    fn node_files(&self, file: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, file);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (crt, pem) = (
            self.dir.path().join(format!("{file}.crt")),
            self.dir.path().join(format!("{file}.key")),
        );
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        (crt, pem)
    }

    /// TLS options for a node with a fresh certificate from this CA, trusting `trust`.
    fn tls(&self, file: &str, trust: &Ca) -> DistTls {
        let (crt, key) = self.node_files(file);
        DistTls::load(crt, key, trust.ca_file()).unwrap()
    }
}

fn options(name: &str, tls: Option<DistTls>) -> ClusterOptions {
    let mut o = ClusterOptions::new(name, "secret", "test").unwrap();
    o.dist_bind = "127.0.0.1:0".parse().unwrap();
    // A peer down after 3 s of silence: a loaded machine does not fake one.
    o.heartbeat_interval = Duration::from_millis(250);
    o.heartbeat_misses = 12;
    o.connect_timeout = SECOND;
    o.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    o.tls = tls;
    o
}

async fn node(name: &str, tls: Option<DistTls>) -> ClusterHandle {
    start(options(name, tls)).await.unwrap()
}

fn target(h: &ClusterHandle) -> String {
    format!("{}:{}", h.node(), h.local_addr().port())
}

fn running(h: &ClusterHandle) -> Vec<String> {
    let mut v: Vec<String> = h.status().running.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

/// Polls `check` every 20 ms until it holds, for at most five seconds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + 5 * SECOND;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `joiner` cannot join `host`: the dial fails before any handshake, and
/// `host` has no link and no new member.
async fn assert_refused(joiner: &ClusterHandle, host: &ClusterHandle) {
    let e = joiner.join(&target(host)).await.unwrap_err();
    assert!(matches!(e, ClusterError::Connect { .. }), "{e}");
    assert!(host.connected().is_empty());
    assert!(joiner.connected().is_empty());
    assert_eq!(running(host), vec![host.node().to_string()]);
}

#[tokio::test]
async fn two_tls_nodes_join_and_call_each_other() {
    let ca = Ca::new("girder");
    let a = node("a@127.0.0.1", Some(ca.tls("a", &ca))).await;
    let b = node("b@127.0.0.1", Some(ca.tls("b", &ca))).await;
    b.join(&target(&a)).await.unwrap();
    let both = vec!["a@127.0.0.1".to_owned(), "b@127.0.0.1".to_owned()];
    for h in [&a, &b] {
        eventually("both running", || running(h) == both).await;
    }
    let pong = b
        .call(a.node(), ECHO, Payload::new("t", "over tls"), 5 * SECOND)
        .await
        .unwrap();
    assert_eq!(&pong.data[..], b"over tls");
    let pong = a
        .call(b.node(), ECHO, Payload::new("t", "back"), 5 * SECOND)
        .await
        .unwrap();
    assert_eq!(&pong.data[..], b"back");
    for h in [a, b] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn the_cookie_is_still_checked_inside_tls() {
    let ca = Ca::new("girder");
    let a = node("a@127.0.0.1", Some(ca.tls("a", &ca))).await;
    let mut o = options("x@127.0.0.1", Some(ca.tls("x", &ca)));
    o.cookie = "guess".to_owned();
    let x = start(o).await.unwrap();
    let e = x.join(&target(&a)).await.unwrap_err();
    assert!(matches!(e, ClusterError::Handshake { .. }), "{e}");
    assert!(a.connected().is_empty());
    assert_eq!(running(&a), vec!["a@127.0.0.1".to_owned()]);
    for h in [a, x] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_server_name_replaces_the_peer_host() {
    // The certificates name 127.0.0.1 and localhost; checking peers against
    // the fixed name `localhost` works, against another name it does not.
    let ca = Ca::new("girder");
    let a = node("a@127.0.0.1", Some(ca.tls("a", &ca))).await;
    let good = node(
        "b@127.0.0.1",
        Some(ca.tls("b", &ca).with_server_name("localhost")),
    )
    .await;
    good.join(&target(&a)).await.unwrap();
    let bad = node(
        "c@127.0.0.1",
        Some(ca.tls("c", &ca).with_server_name("elsewhere.example")),
    )
    .await;
    let e = bad.join(&target(&a)).await.unwrap_err();
    assert!(matches!(e, ClusterError::Connect { .. }), "{e}");
    assert!(bad.connected().is_empty());
    for h in [a, good, bad] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_cannot_join() {
    let (ca, rogue_ca) = (Ca::new("girder"), Ca::new("rogue"));
    let a = node("a@127.0.0.1", Some(ca.tls("a", &ca))).await;
    // Signed by another CA, trusting that CA: refused by a's listener, and
    // it refuses a's certificate when a dials it.
    let rogue = node("r@127.0.0.1", Some(rogue_ca.tls("r", &rogue_ca))).await;
    assert_refused(&rogue, &a).await;
    assert_refused(&a, &rogue).await;
    // Signed by another CA but trusting a's: a's listener still refuses its
    // client certificate.
    let half = node("h@127.0.0.1", Some(rogue_ca.tls("h", &ca))).await;
    assert_refused(&half, &a).await;
    for h in [a, rogue, half] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_plain_node_cannot_join_a_tls_node() {
    let ca = Ca::new("girder");
    let a = node("a@127.0.0.1", Some(ca.tls("a", &ca))).await;
    let plain = node("p@127.0.0.1", None).await;
    assert_refused(&plain, &a).await;
    assert_refused(&a, &plain).await;
    for h in [a, plain] {
        h.shutdown().await;
    }
}

fn load_error(cert: &Path, key: &Path, ca: &Path) -> String {
    DistTls::load(cert, key, ca).unwrap_err().to_string()
}

#[tokio::test]
async fn bad_files_are_start_up_errors_naming_the_file() {
    let ca = Ca::new("girder");
    let (crt, key) = ca.node_files("a");
    let missing = ca.dir.path().join("missing.pem");
    let e = load_error(&crt, &missing, &ca.ca_file());
    assert!(e.contains("keyfile") && e.contains("missing.pem"), "{e}");
    let e = load_error(&missing, &key, &ca.ca_file());
    assert!(e.contains("certfile") && e.contains("missing.pem"), "{e}");
    // A key where the CA should be: no certificate in it.
    let e = load_error(&crt, &key, &key);
    assert!(e.contains("cacertfile") && e.contains("a.key"), "{e}");
    let e = load_error(&crt, &crt, &ca.ca_file());
    assert!(e.contains("keyfile") && e.contains("a.crt"), "{e}");
    // Files that parse but do not belong together fail at start.
    let (_, other_key) = ca.node_files("b");
    let tls = DistTls::load(&crt, &other_key, ca.ca_file()).unwrap();
    let e = start(options("a@127.0.0.1", Some(tls))).await.unwrap_err();
    assert!(matches!(e, ClusterError::InvalidOption(_)), "{e}");
}
