use super::*;

fn local(node: &str, cookie: &str, cluster: &str) -> Local {
    Local {
        node: NodeName::parse(node).unwrap(),
        cluster: cluster.into(),
        cookie: cookie.as_bytes().into(),
        incarnation: 7,
        member_version: 3,
        addr: "127.0.0.1:1".into(),
    }
}

fn nonce(b: u8) -> Vec<u8> {
    vec![b; NONCE_LEN]
}

/// Runs a full exchange between two fresh machines; returns both end states.
fn run(dialer: Local, acceptor: Local, admit: Result<(), RejectReason>) -> (Handshake, Handshake) {
    let expected = acceptor.node.clone();
    let (mut d, hello) = Handshake::dial(dialer, expected, nonce(1));
    let mut a = Handshake::accept(acceptor, nonce(2));
    let mut to_acceptor = Some(hello);
    let mut to_dialer = None;
    for _ in 0..8 {
        if let Some(m) = to_acceptor.take() {
            let (next, out) = a.next(Input::Msg(m));
            a = next;
            to_dialer = out;
        }
        if matches!(a, Handshake::AwaitAdmission { .. }) {
            let (next, out) = a.next(Input::Admission(admit));
            a = next;
            to_dialer = out;
        }
        match to_dialer.take() {
            Some(m) => {
                let (next, out) = d.next(Input::Msg(m));
                d = next;
                to_acceptor = out;
            }
            None => break,
        }
    }
    (d, a)
}

#[test]
fn same_cookie_and_cluster_establish_both_ends() {
    let (d, a) = run(
        local("a@h", "secret", "c"),
        local("b@h", "secret", "c"),
        Ok(()),
    );
    match (d, a) {
        (Handshake::Established(pd), Handshake::Established(pa)) => {
            assert_eq!(pd.node.as_str(), "b@h");
            assert_eq!(pa.node.as_str(), "a@h");
            assert_eq!((pa.incarnation, pa.member_version), (7, 3));
        }
        other => panic!("not established: {other:?}"),
    }
}

#[test]
fn a_wrong_cookie_is_caught_by_the_acceptor_which_answers_nothing() {
    let (d, a) = run(
        local("a@h", "wrong", "c"),
        local("b@h", "secret", "c"),
        Ok(()),
    );
    assert!(
        matches!(a, Handshake::Failed(HandshakeError::BadMac)),
        "{a:?}"
    );
    // The dialer never got an Accept: it is still waiting, and times out.
    assert!(matches!(d, Handshake::AwaitAccept { .. }), "{d:?}");
}

#[test]
fn a_forged_accept_is_caught_by_the_dialer() {
    let l = local("a@h", "secret", "c");
    let (d, _) = Handshake::dial(l, NodeName::parse("b@h").unwrap(), nonce(1));
    let mut intro_b = intro(&local("b@h", "other", "c"), &nonce(2));
    intro_b.member_version = 0;
    let (d, out) = d.next(Input::Msg(HsMsg::Challenge(intro_b)));
    assert!(matches!(out, Some(HsMsg::Response { .. })));
    let (d, _) = d.next(Input::Msg(HsMsg::Accept { mac: vec![0; 32] }));
    assert!(matches!(d, Handshake::Failed(HandshakeError::BadMac)));
}

#[test]
fn a_mac_does_not_replay_in_the_other_direction() {
    let l = local("a@h", "secret", "c");
    let b = NodeName::parse("b@h").unwrap();
    let dialer_mac = proof(&l, Role::Dialer, &l.node, &b, &nonce(1), &nonce(2));
    assert!(!verify(
        &l,
        Role::Acceptor,
        &l.node,
        &b,
        &nonce(1),
        &nonce(2),
        &dialer_mac
    ));
    assert!(verify(
        &l,
        Role::Dialer,
        &l.node,
        &b,
        &nonce(1),
        &nonce(2),
        &dialer_mac
    ));
}

#[test]
fn a_wrong_cluster_is_refused_before_any_proof() {
    let (d, a) = run(
        local("a@h", "secret", "c1"),
        local("b@h", "secret", "c2"),
        Ok(()),
    );
    assert!(
        matches!(a, Handshake::Failed(HandshakeError::WrongCluster { .. })),
        "{a:?}"
    );
    assert!(matches!(d, Handshake::AwaitChallenge { .. }), "{d:?}");
}

#[test]
fn a_refused_admission_sends_a_reject() {
    let (d, a) = run(
        local("a@h", "s", "c"),
        local("b@h", "s", "c"),
        Err(RejectReason::Duplicate),
    );
    assert!(matches!(
        a,
        Handshake::Failed(HandshakeError::Rejected(RejectReason::Duplicate))
    ));
    assert!(matches!(
        d,
        Handshake::Failed(HandshakeError::Rejected(RejectReason::Duplicate))
    ));
}

#[test]
fn the_dialer_checks_who_answers() {
    let (d, _) = Handshake::dial(
        local("a@h", "s", "c"),
        NodeName::parse("b@h").unwrap(),
        nonce(1),
    );
    let (d, out) = d.next(Input::Msg(HsMsg::Challenge(intro(
        &local("x@h", "s", "c"),
        &nonce(2),
    ))));
    assert!(out.is_none());
    assert!(matches!(
        d,
        Handshake::Failed(HandshakeError::UnexpectedNode { .. })
    ));
}

#[test]
fn versions_within_one_are_accepted() {
    let a = Handshake::accept(local("b@h", "s", "c"), nonce(2));
    let mut hello = intro(&local("a@h", "s", "c"), &nonce(1));
    hello.version = PROTOCOL_VERSION + 1;
    let (a, _) = a.next(Input::Msg(HsMsg::Hello(hello.clone())));
    assert!(matches!(a, Handshake::AwaitAdmission { .. }));
    let a = Handshake::accept(local("b@h", "s", "c"), nonce(2));
    hello.version = PROTOCOL_VERSION + 2;
    let (a, _) = a.next(Input::Msg(HsMsg::Hello(hello)));
    assert!(matches!(
        a,
        Handshake::Failed(HandshakeError::Version { .. })
    ));
}

#[test]
fn self_links_and_out_of_order_messages_fail() {
    let a = Handshake::accept(local("a@h", "s", "c"), nonce(2));
    let (a, _) = a.next(Input::Msg(HsMsg::Hello(intro(
        &local("a@h", "s", "c"),
        &nonce(1),
    ))));
    assert!(matches!(a, Handshake::Failed(HandshakeError::SelfLink)));
    let a = Handshake::accept(local("a@h", "s", "c"), nonce(2));
    let (a, _) = a.next(Input::Msg(HsMsg::Accept { mac: vec![] }));
    assert!(matches!(
        a,
        Handshake::Failed(HandshakeError::Unexpected("accept"))
    ));
}
