//! Helpers shared by the integration tests: files on disk and one-call loads.

use std::io::Write;
use std::path::Path;

use girder_config::{Config, ConfigError, LoadOptions, Loaded};

/// Writes `text` to a fresh `.conf` file that lives as long as the handle.
pub(crate) fn conf_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".conf")
        .tempfile()
        .expect("create temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    file.flush().expect("flush temp file");
    file
}

/// Loads with an optional file, environment pairs and overrides.
pub(crate) fn load(
    file: Option<&Path>,
    env: &[(&str, &str)],
    overrides: &[&str],
) -> Result<Loaded, ConfigError> {
    Config::load(&LoadOptions {
        file: file.map(Path::to_owned),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        overrides: overrides.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Loads a file written from `text`, with no environment.
pub(crate) fn load_text(text: &str) -> Result<Config, ConfigError> {
    let file = conf_file(text);
    load(Some(file.path()), &[], &[]).map(|l| l.config)
}

/// Loads a file written from `text` and returns the error line, with the
/// temp file's name replaced by `FILE`.
pub(crate) fn error_line(text: &str) -> String {
    let file = conf_file(text);
    let err = load(Some(file.path()), &[], &[]).expect_err("the file must be rejected");
    let line = err.to_string();
    assert!(!line.contains('\n'), "error is not one line: {line:?}");
    line.replace(&file.path().display().to_string(), "FILE")
}
