//! `cluster.dist.tls.*` in running nodes: two `girder start` processes
//! with certificates from one CA form a cluster over mutual TLS; a node
//! without TLS cannot join them.

use std::path::Path;

use anyhow::Result;
use girder_tests::cluster::{sorted, specs, Node, Spec};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Writes a CA and, for each address, a node certificate and key; returns
/// the config block of each node.
fn certificates(dir: &Path, ips: &[std::net::Ipv4Addr]) -> Result<Vec<String>> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "girder test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, issuer.pem())?;
    let mut blocks = Vec::new();
    for ip in ips {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![ip.to_string()])?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer)?;
        let (crt, pem) = (dir.join(format!("{ip}.crt")), dir.join(format!("{ip}.key")));
        std::fs::write(&crt, cert.pem())?;
        std::fs::write(&pem, key.serialize_pem())?;
        blocks.push(format!(
            "cluster.dist.tls {{ enable = true, certfile = {:?}, keyfile = {:?}, cacertfile = {:?} }}\n",
            crt.display().to_string(),
            pem.display().to_string(),
            ca_file.display().to_string()
        ));
    }
    Ok(blocks)
}

#[test]
fn nodes_with_dist_tls_cluster_and_a_plain_node_cannot_join() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let [a, b, plain] =
        <[Spec; 3]>::try_from(specs(72, 3, false)?).map_err(|_| anyhow::anyhow!("three"))?;
    let tls = certificates(dir.path(), &[a.ip, b.ip])?;
    let b = Spec {
        seeds: vec![a.target()],
        extra: tls[1].clone(),
        ..b
    };
    let a = Spec {
        seeds: vec![b.target()],
        extra: tls[0].clone(),
        ..a
    };
    let a_target = a.target();
    let nodes = Node::start_all(vec![a, b, plain])?;
    let both = sorted([nodes[0].spec.name.as_str(), nodes[1].spec.name.as_str()]);
    for n in &nodes[..2] {
        n.wait_for("both TLS nodes running", |m| {
            m.running == both && m.stopped.is_empty()
        })?;
    }
    let refused = nodes[2].ctl_fails(&["cluster", "join", &a_target])?;
    assert!(
        refused.contains("cannot connect") || refused.contains("failed"),
        "{refused}"
    );
    let alone = sorted([nodes[2].spec.name.as_str()]);
    nodes[2].wait_for("plain node alone", |m| m.running == alone)?;
    Ok(())
}
