//! Loading: stack the layers with `config::ConfigBuilder`, deserialize the
//! merged tree with [`crate::de`], validate.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use config::{Source, Value, ValueKind};
use serde::de::IgnoredAny;

use crate::de;
use crate::error::{ConfigError, Warning};
use crate::schema::Config;
use crate::sources::{EnvSource, HoconSource, OverrideSource};

/// The commented default file, compiled in. Loading it alone gives
/// [`Config::default`]: a working single node.
const DEFAULT_FILE: &str = include_str!("../etc/girder.conf");

/// Origin name of the embedded defaults in error messages.
const DEFAULTS_ORIGIN: &str = "defaults";

/// The embedded default file, for `girder generate-config`.
pub fn default_file() -> &'static str {
    DEFAULT_FILE
}

/// Reads and validates a configuration file on its own (defaults < file),
/// ignoring the environment, for `girder check-config`.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    Config::load(&LoadOptions {
        file: Some(path.to_owned()),
        ..LoadOptions::default()
    })
    .map(|loaded| loaded.config)
}

/// What to load: the layers above the embedded defaults.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The configuration file, if any.
    pub file: Option<PathBuf>,
    /// The environment, e.g. `std::env::vars().collect()`. Variables starting
    /// with `GIRDER_` and `EMQX_` are read (`GIRDER_` wins); the whole map
    /// also serves `${VAR}` substitutions in the file.
    pub env: Vec<(String, String)>,
    /// `key.path=value` overrides from the command line, applied last.
    pub overrides: Vec<String>,
}

/// A loaded configuration and the warnings met on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Ignored environment variables and the like, for the caller to log.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Loads defaults < file < `EMQX_*` < `GIRDER_*` < overrides, then
    /// validates. Environment variables naming unknown keys under a known
    /// root are dropped with a warning; every other problem is an error.
    pub fn load(options: &LoadOptions) -> Result<Loaded, ConfigError> {
        let env: HashMap<String, String> = options.env.iter().cloned().collect();
        let defaults = HoconSource::from_text(DEFAULTS_ORIGIN, DEFAULT_FILE, &HashMap::new())?;
        let file = options
            .file
            .as_deref()
            .map(|path| HoconSource::from_file(path, &env))
            .transpose()?;
        let mut warnings = Vec::new();
        let mut emqx = EnvSource::new("EMQX_", &options.env);
        let mut girder = EnvSource::new("GIRDER_", &options.env);
        warnings.extend(emqx.take_malformed());
        warnings.extend(girder.take_malformed());
        emqx.check()?;
        girder.check()?;
        let overrides = OverrideSource::new(&options.overrides)?;

        loop {
            let mut builder = config::Config::builder().add_source(defaults.clone());
            if let Some(file) = &file {
                builder = builder.add_source(file.clone());
            }
            let merged = builder
                .add_source(emqx.clone())
                .add_source(girder.clone())
                .add_source(overrides.clone())
                .build()
                .map_err(layering_error)?;
            let mut layers = vec![defaults.collect(), emqx.collect(), girder.collect()];
            layers.extend(file.as_ref().map(config::Source::collect));
            layers.push(overrides.collect());
            let tree = merged_tree(&merged, &layers)?;
            match de::from_value::<Config>(&tree) {
                Ok(config) => {
                    config.validate().map_err(|e| {
                        let origin = e.path().and_then(|p| origin_at(&tree, p));
                        e.with_origin(origin)
                    })?;
                    return Ok(Loaded { config, warnings });
                }
                Err(ConfigError::UnknownKey {
                    path,
                    origin: Some(origin),
                }) if origin.starts_with("env ") => {
                    let var = &origin["env ".len()..];
                    if girder.remove(var).or_else(|| emqx.remove(var)).is_none() {
                        return Err(ConfigError::UnknownKey {
                            path,
                            origin: Some(origin),
                        });
                    }
                    warnings.push(Warning::UnknownEnvVar {
                        var: var.to_owned(),
                        path,
                    });
                }
                // An env variable that descends into a scalar or a list
                // (`EMQX_AUTHENTICATION__ENABLED`) also names no key.
                Err(ConfigError::Invalid {
                    path,
                    origin: Some(origin),
                    value,
                    reason,
                }) if origin.starts_with("env ") => {
                    let var = &origin["env ".len()..];
                    let env_path = girder.path_of(var).or_else(|| emqx.path_of(var));
                    match env_path {
                        Some(env_path) if env_path.starts_with(&format!("{path}.")) => {
                            girder.remove(var).or_else(|| emqx.remove(var));
                            warnings.push(Warning::UnknownEnvVar {
                                var: var.to_owned(),
                                path: env_path,
                            });
                        }
                        _ => {
                            return Err(ConfigError::Invalid {
                                path,
                                value,
                                reason,
                                origin: Some(origin),
                            })
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Parses HOCON text over the embedded defaults and validates it; no
    /// environment. Handy for tests and tools.
    pub fn from_hocon(text: &str) -> Result<Config, ConfigError> {
        let defaults = HoconSource::from_text(DEFAULTS_ORIGIN, DEFAULT_FILE, &HashMap::new())?;
        let layer = HoconSource::from_text("text", text, &HashMap::new())?;
        let merged = config::Config::builder()
            .add_source(defaults)
            .add_source(layer)
            .build()
            .map_err(layering_error)?;
        let config: Config = de::from_value(&merged_tree(&merged, &[])?)?;
        config.validate()?;
        Ok(config)
    }
}

/// Unwraps Girder's own errors that travelled through the `config` crate.
fn layering_error(e: config::ConfigError) -> ConfigError {
    match e {
        config::ConfigError::Foreign(inner) => match inner.downcast::<ConfigError>() {
            Ok(ours) => *ours,
            Err(other) => ConfigError::Layering(other.to_string()),
        },
        other => ConfigError::Layering(other.to_string()),
    }
}

/// The merged tree with the origins of its leaves. `config::Config` keeps its
/// tree private and deserializing it drops origins, so the roots are listed
/// first and each is fetched with `get_table`/`get_array`, which keep them.
///
/// A root holding a scalar comes back without its origin; it is taken from
/// the highest `layers` entry (lowest precedence first) that sets the root.
fn merged_tree(
    merged: &config::Config,
    layers: &[Result<config::Map<String, Value>, config::ConfigError>],
) -> Result<Value, ConfigError> {
    let roots: BTreeMap<String, IgnoredAny> = merged
        .clone()
        .try_deserialize()
        .map_err(|e| ConfigError::Layering(e.to_string()))?;
    let mut tree = config::Map::new();
    for root in roots.keys() {
        let value = if let Ok(table) = merged.get_table(root) {
            Value::new(None, ValueKind::Table(table))
        } else if let Ok(items) = merged.get_array(root) {
            Value::new(None, ValueKind::Array(items))
        } else {
            let kind = merged
                .get::<Value>(root)
                .map_err(|e| ConfigError::Layering(e.to_string()))?
                .kind;
            let origin = layers
                .iter()
                .rev()
                .filter_map(|layer| layer.as_ref().ok()?.get(root))
                .find_map(de::any_origin);
            Value::new(origin.as_ref(), kind)
        };
        tree.insert(root.clone(), value);
    }
    Ok(Value::new(None, ValueKind::Table(tree)))
}

/// The layer that set the value at a dotted path (1-based array indexes).
fn origin_at(tree: &Value, path: &str) -> Option<String> {
    let mut value = tree;
    for key in path.split('.') {
        value = match &value.kind {
            ValueKind::Table(table) => table.get(key)?,
            ValueKind::Array(items) => items.get(key.parse::<usize>().ok()?.checked_sub(1)?)?,
            _ => return None,
        };
    }
    de::any_origin(value)
}
