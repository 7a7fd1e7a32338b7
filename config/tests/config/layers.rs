//! The layers: defaults, file, environment, overrides, and their order.

use std::net::SocketAddr;

use girder_config::{
    check_file, default_file, Backend, Bind, ByteSize, Config, DbRole, DiscoveryStrategy, Duration,
    Limit, LogLevel, NodeName, Warning,
};

use crate::common::{conf_file, load, load_text};

fn names(list: &[NodeName]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn no_file_gives_a_working_single_node() {
    let loaded = load(None, &[], &[]).expect("defaults load");
    assert!(loaded.warnings.is_empty());
    let config = loaded.config;
    assert_eq!(config, Config::default());
    assert_eq!(config.node.name.to_string(), "girder@127.0.0.1");
    assert_eq!(config.node.role, DbRole::Core);
    let enabled: Vec<_> = config
        .listeners
        .enabled()
        .map(|l| (l.kind, l.name.to_owned(), l.bind))
        .collect();
    assert_eq!(enabled, [("tcp", "default".to_owned(), Bind::any(1883))]);
    assert_eq!(config.listeners.ws["default"].bind, Bind::any(8083));
    assert_eq!(config.admin.bind.to_string(), "127.0.0.1:18083");
    assert_eq!(config.mqtt.max_packet_size, ByteSize(1_048_576));
    assert_eq!(config.mqtt.session_expiry_interval, Duration::hours(2));
    assert_eq!(config.mqtt.max_subscriptions, Limit::Infinity);
}

#[test]
fn the_default_file_round_trips_to_config_default() {
    let file = conf_file(default_file());
    assert_eq!(
        check_file(file.path()).expect("default file loads"),
        Config::default()
    );
    // And on its own, without the embedded layer under it.
    assert_eq!(
        Config::from_hocon(default_file()).expect("loads"),
        Config::default()
    );
}

#[test]
fn the_emqx_documentation_block_loads_as_is() {
    let config = load_text(
        "node {\n  db_role = replicant\n}\ncluster {\n  core_nodes = \"emqx1@192.168.0.1, emqx2@192.168.0.2\"\n}\n",
    )
    .expect("EMQX doc block loads");
    assert_eq!(config.node.role, DbRole::Replicant);
    assert_eq!(
        names(&config.cluster.core_nodes),
        ["emqx1@192.168.0.1", "emqx2@192.168.0.2"]
    );
}

#[test]
fn an_emqx_shaped_file_loads() {
    let config = load_text(
        r#"
node {
  name     = "emqx@core1.girder.local"
  cookie   = "change-me-cluster-secret"
  data_dir = "data"
  role     = core
}
cluster {
  name = girdercl
  discovery_strategy = static
  static.seeds = ["emqx@core1.girder.local", "emqx@core2.girder.local"]
  autoheal = true
  autoclean = 24h
}
listeners.tcp.default { bind = "0.0.0.0:1883", max_connections = infinity }
listeners.tcp.internal { bind = 11883, max_connections = 1000 }
listeners.tcp.edge { bind = "0.0.0.0:2883", mountpoint = "edge/" }
mqtt {
  max_packet_size = 4KB
  session_expiry_interval = 1h30m
  max_inflight = 64
  keepalive_multiplier = 2
  server_keepalive = 60
  retry_interval = 30s
}
authentication = [
  { enable = false, mechanism = password_based, backend = built_in_database, user_id_type = clientid }
]
authorization { no_match = allow, deny_action = disconnect, sources = [{ type = file, enable = false, path = "etc/acl.conf" }] }
log.console { level = notice, formatter = json }
prometheus.enable_basic_auth = false
sys_topics { sys_msg_interval = disabled, sys_heartbeat_interval = disabled }
"#,
    )
    .expect("file loads");
    assert_eq!(config.cluster.discovery_strategy, DiscoveryStrategy::Static);
    assert_eq!(
        names(&config.cluster.static_.seeds),
        ["emqx@core1.girder.local", "emqx@core2.girder.local"]
    );
    let internal = &config.listeners.tcp["internal"];
    assert_eq!(
        (internal.bind, internal.max_connections),
        (Bind::any(11883), Limit::Finite(1000))
    );
    assert_eq!(
        internal.acceptors, 16,
        "unset keys of a new listener take the defaults"
    );
    assert_eq!(config.listeners.enabled().count(), 3);
    assert_eq!(config.mqtt.max_packet_size, ByteSize(4096));
    assert_eq!(config.mqtt.session_expiry_interval, Duration::mins(90));
    assert_eq!(config.mqtt.keepalive_multiplier, 2.0);
    assert_eq!(config.mqtt.server_keepalive, Some(60));
    assert_eq!(
        config.mqtt.retry_interval,
        Limit::Finite(Duration::secs(30))
    );
    assert_eq!(
        config.mqtt.max_mqueue_len,
        Limit::Finite(1000),
        "untouched keys keep defaults"
    );
    assert_eq!(
        config.authentication[0].backend,
        Some(Backend::BuiltInDatabase)
    );
    assert_eq!(config.log.console.level, LogLevel::Notice);
    assert_eq!(config.log.console.level.tracing_directive(), "info");
    assert_eq!(config.sys_topics.sys_msg_interval, None);
}

#[test]
fn environment_overrides_scalars_lists_and_objects() {
    let loaded = load(
        None,
        &[
            ("GIRDER_NODE__DB_ROLE", "replicant"),
            ("GIRDER_NODE__NAME", "girder3@10.0.0.3"),
            ("GIRDER_MQTT__MAX_PACKET_SIZE", "4KB"),
            ("GIRDER_MQTT__MAX_INFLIGHT", "64"),
            ("GIRDER_MQTT__RETAIN_AVAILABLE", "false"),
            ("GIRDER_CLUSTER__STATIC__SEEDS", "[a@h1, b@h2]"),
            ("GIRDER_CLUSTER__CORE_NODES", "c1@h1,c2@h2"),
            ("GIRDER_LISTENERS__TCP__DEFAULT__BIND", "\"0.0.0.0:11883\""),
            (
                "GIRDER_LISTENERS__TCP__EXTRA",
                "{bind = 1884, max_connections = 100}",
            ),
            ("GIRDER_LISTENERS__WS__DEFAULT__ENABLE", "false"),
            ("GIRDER_LISTENERS__WS__DEFAULT__BIND", "8090"),
            ("GIRDER_NODE__COOKIE", "s3cr#t"),
            ("PATH", "/usr/bin"),
        ],
        &[],
    )
    .expect("env loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.node.role, DbRole::Replicant);
    assert_eq!(c.node.name.host(), "10.0.0.3");
    assert_eq!(c.node.cookie, "s3cr#t", "a # in a value is not a comment");
    assert_eq!(c.mqtt.max_packet_size, ByteSize(4096));
    assert_eq!(c.mqtt.max_inflight, 64);
    assert!(!c.mqtt.retain_available);
    assert_eq!(names(&c.cluster.static_.seeds), ["a@h1", "b@h2"]);
    assert_eq!(names(&c.cluster.core_nodes), ["c1@h1", "c2@h2"]);
    assert_eq!(c.listeners.tcp["default"].bind.to_string(), "0.0.0.0:11883");
    assert_eq!(c.listeners.tcp["extra"].bind, Bind::any(1884));
    assert_eq!(c.listeners.tcp["extra"].max_connections, Limit::Finite(100));
    assert!(!c.listeners.ws["default"].enable);
    assert_eq!(c.listeners.ws["default"].bind, Bind::any(8090));
}

#[test]
fn emqx_compose_environments_paste_unchanged() {
    let loaded = load(
        None,
        &[
            ("EMQX_NAME", "emqx"),
            ("EMQX_HOST", "node2.emqx.io"),
            ("EMQX_NODE__NAME", "emqx@node2.emqx.io"),
            ("EMQX_NODE__COOKIE", "cluster-secret"),
            ("EMQX_NODE__DB_BACKEND", "rlog"),
            ("EMQX_NODE__DB_ROLE", "replicant"),
            ("EMQX_CLUSTER__DISCOVERY_STRATEGY", "static"),
            ("EMQX_CLUSTER__STATIC__SEEDS", "[emqx@node1.emqx.io]"),
            ("EMQX_CLUSTER__CORE_NODES", "emqx@node1.emqx.io"),
            ("EMQX_LOG__CONSOLE_HANDLER__ENABLE", "true"),
            ("EMQX_LOG__CONSOLE__LEVEL", "info"),
            ("EMQX_RPC__PORT_DISCOVERY", "manual"),
            ("EMQX_DASHBOARD__DEFAULT_PASSWORD", "public"),
        ],
        &[],
    )
    .expect("EMQX env loads");
    assert!(
        loaded.warnings.is_empty(),
        "unknown roots are ignored silently"
    );
    let c = loaded.config;
    assert_eq!(c.node.name.to_string(), "emqx@node2.emqx.io");
    assert_eq!(c.node.role, DbRole::Replicant);
    assert_eq!(names(&c.cluster.static_.seeds), ["emqx@node1.emqx.io"]);
    assert_eq!(names(&c.cluster.core_nodes), ["emqx@node1.emqx.io"]);
    assert_eq!(c.log.console.level, LogLevel::Info);
    assert!(c.log.console.enable);
}

#[test]
fn unknown_env_keys_under_known_roots_are_warnings() {
    let loaded = load(
        None,
        &[
            ("GIRDER_MQTT__MAX_PAKCET_SIZE", "2MB"),
            ("GIRDER_LISTENERS__TCP__DEFAULT__BOGUS__DEEP", "1"),
            ("EMQX_AUTHENTICATION__ENABLED", "true"),
            ("GIRDER_MQTT__MAX_INFLIGHT", "7"),
        ],
        &[],
    )
    .expect("unknown env keys do not fail the load");
    assert_eq!(
        loaded.config.mqtt.max_inflight, 7,
        "the valid variables still apply"
    );
    let mut vars: Vec<_> = loaded
        .warnings
        .iter()
        .map(|w| match w {
            Warning::UnknownEnvVar { var, path } => (var.clone(), path.clone()),
            other => panic!("unexpected warning {other:?}"),
        })
        .collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            (
                "EMQX_AUTHENTICATION__ENABLED".to_owned(),
                "authentication.enabled".to_owned()
            ),
            (
                "GIRDER_LISTENERS__TCP__DEFAULT__BOGUS__DEEP".to_owned(),
                "listeners.tcp.default.bogus".to_owned()
            ),
            (
                "GIRDER_MQTT__MAX_PAKCET_SIZE".to_owned(),
                "mqtt.max_pakcet_size".to_owned()
            ),
        ]
    );
    assert!(loaded.warnings[0]
        .to_string()
        .starts_with("unknown environment variable "));
}

#[test]
fn precedence_is_defaults_file_emqx_girder_override() {
    let file = conf_file("mqtt.max_inflight = 10\nmqtt.max_awaiting_rel = 5\n");
    let path = Some(file.path());
    let emqx = ("EMQX_MQTT__MAX_INFLIGHT", "20");
    let girder = ("GIRDER_MQTT__MAX_INFLIGHT", "30");
    let over = ["mqtt.max_inflight=40"];
    let inflight = |path, env: &[(&str, &str)], over: &[&str]| {
        load(path, env, over)
            .expect("loads")
            .config
            .mqtt
            .max_inflight
    };
    assert_eq!(inflight(path, &[emqx, girder], &over), 40);
    assert_eq!(
        inflight(path, &[girder, emqx], &[]),
        30,
        "GIRDER_ beats EMQX_ in any order"
    );
    assert_eq!(inflight(path, &[emqx], &[]), 20);
    assert_eq!(inflight(path, &[], &[]), 10);
    assert_eq!(inflight(None, &[], &[]), 32);
    // Layers merge key by key: the file's other key survives the env layer.
    let c = load(path, &[girder], &over).expect("loads").config;
    assert_eq!(c.mqtt.max_awaiting_rel, Limit::Finite(5));
    // Later overrides win over earlier ones.
    let c = load(None, &[], &["mqtt.max_inflight=1", "mqtt.max_inflight=2"]).expect("loads");
    assert_eq!(c.config.mqtt.max_inflight, 2);
}

#[test]
fn role_aliases_follow_layer_precedence() {
    let file = conf_file("node.role = core\nlog.console_handler.level = error\n");
    let c = load(
        Some(file.path()),
        &[("GIRDER_NODE__DB_ROLE", "replicant")],
        &[],
    )
    .expect("loads")
    .config;
    assert_eq!(c.node.role, DbRole::Replicant);
    assert_eq!(c.log.console.level, LogLevel::Error);
    let c = load(
        Some(file.path()),
        &[("EMQX_NODE__DB_ROLE", "replicant")],
        &["node.role=core"],
    )
    .expect("loads")
    .config;
    assert_eq!(c.node.role, DbRole::Core);
}

#[test]
fn legacy_single_underscore_node_variables_are_read() {
    let c = load(
        None,
        &[
            ("EMQX_NODE_NAME", "emqx@10.1.1.1"),
            ("EMQX_NODE_COOKIE", "x"),
        ],
        &[],
    )
    .expect("loads")
    .config;
    assert_eq!(
        (c.node.name.to_string(), c.node.cookie.as_str()),
        ("emqx@10.1.1.1".to_owned(), "x")
    );
    let c = load(
        None,
        &[("GIRDER_NODE__NAME", "a@h"), ("GIRDER_NODE_NAME", "b@h")],
        &[],
    )
    .expect("loads")
    .config;
    assert_eq!(c.node.name.to_string(), "a@h", "the __ spelling wins");
}

#[test]
fn dist_port_follows_the_4370_plus_n_rule() {
    let port = |name: &str, over: &[&str]| -> SocketAddr {
        let mut all = vec![format!("node.name={name}")];
        all.extend(over.iter().map(|s| (*s).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let c = load(None, &[], &all).expect("loads").config;
        c.cluster.dist_bind(&c.node.name).expect("port in range")
    };
    assert_eq!(port("girder@127.0.0.1", &[]).port(), 4370);
    assert_eq!(port("girder2@127.0.0.1", &[]).port(), 4372);
    assert_eq!(port("emqx12@h", &[]).port(), 4382);
    assert_eq!(
        port(
            "girder2@127.0.0.1",
            &["cluster.dist.bind=\"127.0.0.1:5000\""]
        ),
        "127.0.0.1:5000".parse::<SocketAddr>().expect("addr")
    );
}

#[test]
fn files_resolve_substitutions_from_the_given_env_and_includes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mqtt.conf"), "mqtt.max_inflight = 99\n").expect("write");
    let main = dir.path().join("girder.conf");
    std::fs::write(
        &main,
        "include \"mqtt.conf\"\nnode.cookie = ${?COOKIE}\nnode.data_dir = ${?NO_SUCH_VAR}\n",
    )
    .expect("write");
    let c = load(Some(&main), &[("COOKIE", "from-env")], &[])
        .expect("loads")
        .config;
    assert_eq!(c.mqtt.max_inflight, 99);
    assert_eq!(c.node.cookie, "from-env");
    assert_eq!(
        c.node.data_dir,
        std::path::PathBuf::from("data"),
        "an unset optional substitution keeps the default"
    );
}

#[test]
fn arrays_may_be_written_as_index_maps() {
    let c = load_text(
        "authentication.1 { enable = false, mechanism = jwt, secret = abc }\nauthentication.2 { enable = false, backend = http, url = \"http://a/auth\" }\n",
    )
    .expect("loads");
    assert_eq!(c.authentication.len(), 2);
    assert_eq!(c.authentication[0].secret, "abc");
    assert_eq!(c.authentication[1].backend, Some(Backend::Http));
}

#[test]
fn map_keys_keep_their_case_through_the_config_crate() {
    let c = load_text("listeners.tcp.External { bind = 1884 }\n").expect("loads");
    assert!(
        c.listeners.tcp.contains_key("External"),
        "{:?}",
        c.listeners.tcp.keys()
    );
}

#[test]
fn hocon_is_also_a_plain_config_crate_format() {
    let merged = config::Config::builder()
        .add_source(config::File::from_str(
            "mqtt { max_inflight = 12, max_packet_size = 2MB }",
            girder_config::Hocon,
        ))
        .build()
        .expect("config crate reads HOCON");
    assert_eq!(merged.get_int("mqtt.max_inflight").expect("int"), 12);
    assert_eq!(
        merged.get_string("mqtt.max_packet_size").expect("str"),
        "2MB"
    );
}
