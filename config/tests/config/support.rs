//! Every key of the schema takes effect in a running node or is refused:
//! the rule of `girder_config::KEYS`, checked against the schema itself.

use std::path::Path;

use girder_config::{schema_keys, support, Config, Support, KEYS};

/// Whether the pattern (`listeners.tcp.*.bind`) covers the dotted path
/// (`listeners.tcp.default.bind`), or a block above it.
fn covers(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let path: Vec<&str> = path.split('.').collect();
    pattern.len() <= path.len() && pattern.iter().zip(&path).all(|(p, k)| p == k || *p == "*")
}

#[test]
fn every_key_of_the_schema_is_wired_or_refused() {
    let keys = schema_keys();
    assert!(keys.len() > 150, "the walk found only {} keys", keys.len());
    let missing: Vec<&String> = keys.iter().filter(|k| support(k).is_none()).collect();
    assert!(
        missing.is_empty(),
        "keys neither wired nor refused (add them to girder_config::KEYS): {missing:?}"
    );
}

#[test]
fn every_entry_names_a_key_of_the_schema() {
    let keys = schema_keys();
    for (entry, _) in KEYS {
        assert!(
            keys.iter().any(|k| covers(entry, k)),
            "KEYS names {entry}, which the schema does not have"
        );
    }
}

#[test]
fn a_wired_key_names_a_test_that_sets_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut wrong = Vec::new();
    for (key, s) in KEYS {
        let Support::Wired(file) = s else { continue };
        let leaf = key.rsplit('.').next().unwrap_or(key);
        match std::fs::read_to_string(root.join(file)) {
            Ok(text) if text.contains(leaf) => {}
            Ok(_) => wrong.push(format!("{key}: its test {file} never mentions {leaf}")),
            Err(e) => wrong.push(format!("{key}: cannot read its test {file}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_refused_key_is_refused_with_one_line_naming_it() {
    for (key, s) in KEYS {
        let Support::Refused { sample } = s else {
            continue;
        };
        let err = match Config::from_hocon(sample) {
            Ok(_) => panic!("{key}: `{sample}` was accepted"),
            Err(err) => err,
        };
        let line = err.to_string();
        let path = err.path().unwrap_or_default();
        assert!(
            covers(key, path),
            "{key}: `{sample}` refused at {path}: {line}"
        );
        assert!(
            line.contains("not supported yet") && !line.contains('\n'),
            "{key}: `{sample}` refused as: {line}"
        );
    }
}

#[test]
fn a_key_under_a_switch_names_a_refused_switch() {
    for (key, s) in KEYS {
        let Support::Under(switch) = s else { continue };
        assert!(
            matches!(support(switch), Some(Support::Refused { .. })),
            "{key} is under {switch}, which is not refused"
        );
    }
}

#[test]
fn the_defaults_ask_for_nothing_that_is_refused() {
    let config = Config::from_hocon("").expect("the embedded defaults load");
    assert_eq!(config, Config::default());
    config
        .check_supported()
        .expect("the defaults are supported");
}

#[test]
fn a_disabled_block_of_a_refused_kind_loads() {
    let config = Config::from_hocon(
        "listeners.ssl.default { enable = false, ssl_options.verify = verify_peer }\n\
         authentication = [{ enable = false, mechanism = jwt, secret = s }]\n\
         authorization.sources = [{ type = file, enable = false, path = acl.conf }]\n",
    );
    assert!(config.is_ok(), "{config:?}");
}
