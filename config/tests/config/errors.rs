//! Every class of error: one line, naming the key, the value and what was
//! expected.

use girder_config::ConfigError;

use crate::common::{conf_file, error_line, load, load_text};

#[test]
fn unknown_keys_are_reported_at_every_depth() {
    assert_eq!(
        error_line("bogus = 1"),
        "config error: unknown key bogus (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.max_pakcet_size = 1MB"),
        "config error: unknown key mqtt.max_pakcet_size (from FILE)"
    );
    assert_eq!(
        error_line("listeners.tcp.default.tcp_options.nodelai = true"),
        "config error: unknown key listeners.tcp.default.tcp_options.nodelai (from FILE)"
    );
    assert_eq!(
        error_line("listeners.tcp.default.ssl_options.certfile = x"),
        "config error: unknown key listeners.tcp.default.ssl_options (from FILE)",
    );
    assert_eq!(
        error_line("listeners.udp.default.bind = 1883"),
        "config error: unknown key listeners.udp (from FILE)"
    );
    assert_eq!(
        error_line(
            "authentication = [{ mechanism = password_based, backend = built_in_database, bogus = 1 }]"
        ),
        "config error: unknown key authentication.1.bogus (from FILE)"
    );
    let err = load(None, &[], &["mqtt.nope=1"]).expect_err("unknown override");
    assert_eq!(
        err.to_string(),
        "config error: unknown key mqtt.nope (from override mqtt.nope)"
    );
}

#[test]
fn wrong_types_name_the_key_value_and_expectation() {
    assert_eq!(
        error_line("mqtt.max_inflight = lots"),
        "config error: mqtt.max_inflight = \"lots\": expected an integer between 0 and 65535 (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.max_inflight = 70000"),
        "config error: mqtt.max_inflight = 70000: expected an integer between 0 and 65535 (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.retain_available = maybe"),
        "config error: mqtt.retain_available = \"maybe\": expected true or false (from FILE)"
    );
    assert_eq!(
        error_line("node = 5"),
        "config error: node = 5: expected an object such as { key = value } (from FILE)"
    );
    assert_eq!(
        error_line("cluster.static.seeds = [\"a@h\", \"nohost\"]"),
        "config error: cluster.static.seeds.2 = \"nohost\": expected a node name of the form name@host (from FILE)"
    );
    assert_eq!(
        error_line("listeners.tcp.default.bind = \"localhost\""),
        "config error: listeners.tcp.default.bind = \"localhost\": expected an address such as 0.0.0.0:1883 or a port (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.max_subscriptions = lots"),
        "config error: mqtt.max_subscriptions = \"lots\": expected a non-negative integer or infinity (from FILE)"
    );
}

#[test]
fn bad_enum_values_list_the_choices() {
    assert_eq!(
        error_line("node.role = leader"),
        "config error: node.role = \"leader\": expected one of core, replicant (from FILE)"
    );
    assert_eq!(
        error_line("node.db_role = leader"),
        "config error: node.role = \"leader\": expected one of core, replicant (from FILE)"
    );
    assert_eq!(
        error_line("cluster.discovery_strategy = etcd"),
        "config error: cluster.discovery_strategy = \"etcd\": expected one of manual, static, dns, singleton (from FILE)"
    );
    assert_eq!(
        error_line("log.console.level = verbose"),
        "config error: log.console.level = \"verbose\": expected one of trace, debug, info, notice, warning, error, critical, alert, emergency (from FILE)"
    );
}

#[test]
fn bad_byte_sizes_and_durations() {
    assert_eq!(
        error_line("mqtt.max_packet_size = 12XB"),
        "config error: mqtt.max_packet_size = \"12XB\": expected a byte size such as 1MB or 1048576 (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.max_packet_size = -5"),
        "config error: mqtt.max_packet_size = -5: expected a byte size such as 1MB or 1048576 (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.idle_timeout = 15x"),
        "config error: mqtt.idle_timeout = \"15x\": expected a duration such as 500ms, 15s, 1m, 2h or 1d (from FILE)"
    );
    assert_eq!(
        error_line("mqtt.message_expiry_interval = forever"),
        "config error: mqtt.message_expiry_interval = \"forever\": expected a duration such as 500ms, 15s, 1m, 2h or 1d or infinity (from FILE)"
    );
}

#[test]
fn out_of_range_values_fail_validation() {
    let cases = [
        (
            "mqtt.max_packet_size = 256MB",
            "config error: mqtt.max_packet_size = 256MB: expected a size between 1 and 268435455 bytes (from FILE)",
        ),
        (
            "mqtt.max_inflight = 0",
            "config error: mqtt.max_inflight = 0: expected an integer between 1 and 65535 (from FILE)",
        ),
        (
            "mqtt.max_clientid_len = 10",
            "config error: mqtt.max_clientid_len = 10: expected an integer between 23 and 65535 (from FILE)",
        ),
        (
            "mqtt.keepalive_multiplier = 0",
            "config error: mqtt.keepalive_multiplier = 0: expected a number greater than 0 (from FILE)",
        ),
        (
            "node.cookie = \"\"",
            "config error: node.cookie = \"\": expected a non-empty secret (from FILE)",
        ),
        (
            "node.name = nonsense",
            "config error: node.name = \"nonsense\": expected a node name of the form name@host (from FILE)",
        ),
        (
            "listeners.tcp.second.bind = 1883",
            "config error: listeners.tcp.second.bind = \"0.0.0.0:1883\": expected an address not used by listeners.tcp.default (from FILE)",
        ),
        (
            "listeners.ssl.default.enable = true",
            // Refused for being TLS before its certificates are looked at.
            "config error: listeners.ssl.default.enable = true: not supported yet: MQTT over TLS listeners are not served yet; only listeners.tcp (from FILE)",
        ),
        (
            "cluster.dist { heartbeat_interval = 10s, heartbeat_timeout = 5s }",
            "config error: cluster.dist.heartbeat_timeout = 5s: expected a duration longer than cluster.dist.heartbeat_interval (10s) (from FILE)",
        ),
        (
            "cluster.discovery_strategy = singleton\nnode.role = replicant",
            "config error: node.role = replicant: expected core when cluster.discovery_strategy = singleton (from FILE)",
        ),
        (
            "authentication = [{ enable = false, mechanism = password_based }]",
            "config error: authentication.1.backend = unset: expected one of built_in_database, http for mechanism = password_based",
        ),
        (
            "admin.bind = 1883",
            "config error: admin.bind = \"0.0.0.0:1883\": expected an address not used by listeners.tcp.default (from FILE)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_line(text), expected, "for {text:?}");
    }
    let err = load(None, &[], &["node.name=girder70000@h"]).expect_err("port overflow");
    assert_eq!(err.path(), Some("node.name"));
}

#[test]
fn hocon_syntax_errors_name_the_file_and_line() {
    let line = error_line("node {\n  name = \"a@b\"\n  cookie = \n");
    assert!(line.starts_with("config error: FILE:"), "{line}");
    let line = error_line("mqtt {\n  max_inflight = 10\n}\nnode.name = girder@127.0.0.1\n");
    assert!(
        line.starts_with("config error: FILE:4:"),
        "an unquoted @ is a HOCON error: {line}"
    );
}

#[test]
fn environment_errors_name_the_variable() {
    let err = load(None, &[("GIRDER_MQTT__MAX_PACKET_SIZE", "12XB")], &[]).expect_err("bad size");
    assert_eq!(
        err.to_string(),
        "config error: mqtt.max_packet_size = \"12XB\": expected a byte size such as 1MB or 1048576 (from env GIRDER_MQTT__MAX_PACKET_SIZE)"
    );
    let err = load(None, &[("EMQX_MQTT__MAX_INFLIGHT", "0")], &[]).expect_err("out of range");
    assert_eq!(
        err.to_string(),
        "config error: mqtt.max_inflight = 0: expected an integer between 1 and 65535 (from env EMQX_MQTT__MAX_INFLIGHT)"
    );
    let err = load(
        None,
        &[
            ("GIRDER_NODE__ROLE", "core"),
            ("GIRDER_NODE__DB_ROLE", "replicant"),
        ],
        &[],
    )
    .expect_err("conflicting aliases in one layer");
    assert_eq!(err.path(), Some("node.db_role"));
}

#[test]
fn bad_overrides_and_missing_files() {
    let err = load(None, &[], &["mqtt.max_inflight"]).expect_err("no =");
    assert!(matches!(err, ConfigError::BadOverride { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "config error: override \"mqtt.max_inflight\": expected key.path=value"
    );
    assert!(matches!(
        load(None, &[], &["mqtt..x=1"]),
        Err(ConfigError::BadOverride { .. })
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.conf");
    let err = load(Some(&missing), &[], &[]).expect_err("missing file");
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("config error: cannot read "));
    // A file that exists but is a directory, for good measure, is not a panic.
    let file = conf_file("");
    assert!(
        load(Some(file.path()), &[], &[]).is_ok(),
        "an empty file is valid HOCON"
    );
}

#[test]
fn rlog_is_the_only_db_backend() {
    assert_eq!(
        error_line("cluster.db_backend = mnesia"),
        "config error: cluster.db_backend = \"mnesia\": expected one of rlog (from FILE)"
    );
}

#[test]
fn port_zero_on_several_listeners_is_no_collision() {
    // Port 0: the OS picks a free port for each at bind time.
    let config = load_text(
        "listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
         listeners.tcp.second.bind = \"127.0.0.1:0\"\n\
         admin.bind = \"127.0.0.1:0\"\n\
         cluster.dist.bind = \"127.0.0.1:0\"\n",
    )
    .expect("port 0 everywhere loads");
    assert_eq!(config.admin.bind.0.port(), 0);
    assert_eq!(config.listeners.enabled().count(), 2);
}
