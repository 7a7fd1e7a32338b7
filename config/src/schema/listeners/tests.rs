//! Validation of the listener keys that take effect at the socket:
//! `tcp_options`, `access_rules`, `proxy_protocol_timeout`.

use std::time::Duration;

use super::mountpoint_is_valid;
use crate::{ByteSize, Config, TcpKeepalive};

fn error_of(text: &str) -> String {
    let err = Config::from_hocon(text).expect_err("must be refused");
    let line = err.to_string();
    assert!(!line.contains('\n'), "not one line: {line:?}");
    line
}

#[test]
fn tcp_options_load_with_their_new_keys() {
    let c = Config::from_hocon(
        "listeners.tcp.default.tcp_options {\n  backlog = 77\n  recbuf = 64KB\n  sndbuf = 32KB\n  \
         buffer = 4KB\n  send_timeout = 2s\n  send_timeout_close = false\n  keepalive = \"240,30,5\"\n}\n",
    )
    .expect("loads");
    let o = &c.listeners.tcp["default"].tcp_options;
    assert_eq!(o.backlog, 77);
    assert_eq!(o.recbuf, Some(ByteSize::kb(64)));
    assert_eq!(o.sndbuf, Some(ByteSize::kb(32)));
    assert_eq!(o.buffer, Some(ByteSize::kb(4)));
    assert!(!o.send_timeout_close);
    assert_eq!(
        o.tcp_keepalive(),
        Ok(Some(TcpKeepalive {
            idle: Duration::from_secs(240),
            interval: Duration::from_secs(30),
            probes: 5,
        }))
    );
    let d = Config::default();
    let o = &d.listeners.tcp["default"].tcp_options;
    assert_eq!((o.recbuf, o.sndbuf, o.buffer), (None, None, None));
    assert!(o.send_timeout_close);
    assert_eq!(o.tcp_keepalive(), Ok(None));
}

#[test]
fn a_bad_keepalive_is_one_line_naming_the_key() {
    for bad in [
        "\"240,30\"",
        "\"0,30,5\"",
        "\"240,30,500\"",
        "\"a,b,c\"",
        "off",
    ] {
        let line = error_of(&format!(
            "listeners.tcp.default.tcp_options.keepalive = {bad}\n"
        ));
        assert!(
            line.starts_with("config error: listeners.tcp.default.tcp_options.keepalive = "),
            "{line}"
        );
        assert!(line.contains("Idle,Interval,Probes"), "{line}");
    }
}

#[test]
fn a_bad_access_rule_is_one_line_naming_the_key_and_the_rule() {
    let line =
        error_of("listeners.tcp.default.access_rules = [\"allow all\", \"deny 10.0.0.0/33\"]\n");
    assert!(
        line.starts_with(
            "config error: listeners.tcp.default.access_rules = \"deny 10.0.0.0/33\": expected rules"
        ),
        "{line}"
    );
    assert!(line.contains("prefix length"), "{line}");
    let line = error_of("listeners.tcp.default.access_rules = [\"permit 1.2.3.4\"]\n");
    assert!(line.contains("\"permit 1.2.3.4\""), "{line}");
    // A disabled listener is checked too: its rules are wrong all the same.
    let line = error_of(
        "listeners.tcp.spare { enable = false, bind = 1999, access_rules = [\"deny nobody\"] }\n",
    );
    assert!(line.contains("listeners.tcp.spare.access_rules"), "{line}");
    Config::from_hocon(
        "listeners.tcp.default.access_rules = [\"allow 10.0.0.0/8, allow ::1\", \"deny all\"]\n",
    )
    .expect("good rules load");
}

#[test]
fn sizes_and_timeouts_out_of_range_are_refused() {
    for (key, value) in [
        ("tcp_options.backlog", "0"),
        ("tcp_options.send_timeout", "0s"),
        ("tcp_options.recbuf", "10"),
        ("tcp_options.sndbuf", "2GB"),
        ("tcp_options.buffer", "2MB"),
        ("proxy_protocol_timeout", "0s"),
    ] {
        let line = error_of(&format!("listeners.tcp.default.{key} = {value}\n"));
        assert!(
            line.starts_with(&format!("config error: listeners.tcp.default.{key} = ")),
            "{line}"
        );
    }
}

#[test]
fn mountpoints_must_be_topic_text_with_known_placeholders() {
    for ok in ["", "dev/", "t/${clientid}/", "${username}/${clientid}/x/"] {
        assert!(mountpoint_is_valid(ok), "{ok:?}");
    }
    for bad in ["a/+/", "#", "a\0", "t/${peerhost}/", "t/${clientid", "t/${"] {
        assert!(!mountpoint_is_valid(bad), "{bad:?}");
    }
    assert!(!mountpoint_is_valid(&"a".repeat(65536)));
}
