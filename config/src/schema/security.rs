//! `authentication` and `authorization`.
//!
//! The authenticator and source entries are flat structs holding the keys of
//! every supported backend; `validate` checks that the keys a backend needs
//! are there. Only the backends Girder implements are accepted: another
//! `backend` or `type` is rejected by name rather than silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check, is_set};
use crate::error::ConfigError;
use crate::types::Duration;

keyword_enum! {
    /// `mechanism` of an authenticator.
    pub enum Mechanism {
        /// Username or client id plus password, checked by a `backend`.
        PasswordBased = "password_based",
        /// A JWT in the password field.
        Jwt = "jwt",
    }
    default PasswordBased
}

keyword_enum! {
    /// Where a password-based authenticator looks users up.
    pub enum Backend {
        /// The replicated user table.
        BuiltInDatabase = "built_in_database",
        /// An HTTP service.
        Http = "http",
    }
    default BuiltInDatabase
}

keyword_enum! {
    /// Which client field identifies a built-in-database user.
    pub enum UserIdType {
        /// The username.
        Username = "username",
        /// The client id.
        Clientid = "clientid",
    }
    default Username
}

keyword_enum! {
    /// HTTP method for the http backend and source.
    pub enum HttpMethod {
        /// GET with the fields as query parameters.
        Get = "get",
        /// POST with the fields as a JSON body.
        Post = "post",
    }
    default Post
}

keyword_enum! {
    /// How a JWT is verified.
    pub enum JwtAlgorithm {
        /// HMAC with `secret`.
        HmacBased = "hmac-based",
        /// RSA or ECDSA with `public_key`.
        PublicKey = "public-key",
    }
    default HmacBased
}

/// `password_hash_algorithm` of the built-in database.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHash {
    /// `plain`, `md5`, `sha`, `sha256`, `sha512`, `bcrypt` or `pbkdf2`.
    pub name: String,
    /// `prefix`, `suffix` or `disable`.
    pub salt_position: String,
}

impl Default for PasswordHash {
    fn default() -> Self {
        Self {
            name: "sha256".to_owned(),
            salt_position: "suffix".to_owned(),
        }
    }
}

/// One entry of `authentication = [ ... ]`, in EMQX's shape.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authenticator {
    /// Whether this authenticator is used.
    pub enable: bool,
    /// How credentials are presented.
    pub mechanism: Mechanism,
    /// Where users are looked up (`password_based` only).
    pub backend: Option<Backend>,
    /// built_in_database: which field names the user.
    pub user_id_type: UserIdType,
    /// built_in_database: how stored passwords are hashed.
    pub password_hash_algorithm: PasswordHash,
    /// built_in_database: CSV of `user_id,password,is_superuser` loaded at start.
    pub bootstrap_file: Option<PathBuf>,
    /// built_in_database: `plain` or `hash` passwords in the bootstrap file.
    pub bootstrap_type: String,
    /// http: method.
    pub method: HttpMethod,
    /// http: URL of the service.
    pub url: String,
    /// http: request headers.
    pub headers: BTreeMap<String, String>,
    /// http: request fields, with `${username}`-style placeholders.
    pub body: BTreeMap<String, String>,
    /// http: time allowed for a reply.
    pub request_timeout: Duration,
    /// jwt: verification algorithm.
    pub algorithm: JwtAlgorithm,
    /// jwt: HMAC secret.
    pub secret: String,
    /// jwt: whether `secret` is base64.
    pub secret_base64_encoded: bool,
    /// jwt: PEM public key.
    pub public_key: String,
    /// jwt: claims that must equal these values (placeholders allowed).
    pub verify_claims: BTreeMap<String, String>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            enable: true,
            mechanism: Mechanism::PasswordBased,
            backend: None,
            user_id_type: UserIdType::Username,
            password_hash_algorithm: PasswordHash::default(),
            bootstrap_file: None,
            bootstrap_type: "plain".to_owned(),
            method: HttpMethod::Post,
            url: String::new(),
            headers: BTreeMap::new(),
            body: BTreeMap::new(),
            request_timeout: Duration::secs(5),
            algorithm: JwtAlgorithm::HmacBased,
            secret: String::new(),
            secret_base64_encoded: false,
            public_key: String::new(),
            verify_claims: BTreeMap::new(),
        }
    }
}

impl Authenticator {
    pub(crate) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        match (self.mechanism, self.backend) {
            (Mechanism::PasswordBased, None) => check(
                false,
                &format!("{at}.backend"),
                "unset",
                "one of built_in_database, http for mechanism = password_based",
            ),
            (Mechanism::PasswordBased, Some(Backend::Http)) => check(
                !self.url.is_empty(),
                &format!("{at}.url"),
                "\"\"",
                "a URL for backend = http",
            ),
            (Mechanism::PasswordBased, Some(Backend::BuiltInDatabase)) => Ok(()),
            (Mechanism::Jwt, Some(backend)) => check(
                false,
                &format!("{at}.backend"),
                backend,
                "no backend for mechanism = jwt",
            ),
            (Mechanism::Jwt, None) => match self.algorithm {
                JwtAlgorithm::HmacBased => check(
                    !self.secret.is_empty(),
                    &format!("{at}.secret"),
                    "\"\"",
                    "a secret for algorithm = hmac-based",
                ),
                JwtAlgorithm::PublicKey => check(
                    !self.public_key.is_empty(),
                    &format!("{at}.public_key"),
                    "\"\"",
                    "a PEM key for algorithm = public-key",
                ),
            },
        }
    }
}

keyword_enum! {
    /// What happens when no authorization rule matches.
    pub enum NoMatch {
        /// Allow.
        Allow = "allow",
        /// Deny.
        Deny = "deny",
    }
    default Allow
}

keyword_enum! {
    /// What happens to a denied publish.
    pub enum DenyAction {
        /// Drop it (and return an error reason code to v5 clients).
        Ignore = "ignore",
        /// Disconnect the client.
        Disconnect = "disconnect",
    }
    default Ignore
}

/// `authorization.cache`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthzCache {
    /// Cache decisions per client.
    pub enable: bool,
    /// Decisions cached per client.
    pub max_size: u32,
    /// How long a decision is cached.
    pub ttl: Duration,
}

impl Default for AuthzCache {
    fn default() -> Self {
        Self {
            enable: true,
            max_size: 32,
            ttl: Duration::mins(1),
        }
    }
}

keyword_enum! {
    /// `type` of an authorization source.
    pub enum AuthzSourceType {
        /// Rules in an `acl.conf` file.
        File = "file",
        /// Rules in the replicated rule table.
        BuiltInDatabase = "built_in_database",
        /// An HTTP service.
        Http = "http",
    }
    default File
}

/// One entry of `authorization.sources`, in EMQX's shape.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthzSource {
    /// The kind of source.
    #[serde(rename = "type")]
    pub kind: AuthzSourceType,
    /// Whether it is consulted.
    pub enable: bool,
    /// file: the rules file.
    pub path: Option<PathBuf>,
    /// http: method.
    pub method: HttpMethod,
    /// http: URL of the service.
    pub url: String,
    /// http: request headers.
    pub headers: BTreeMap<String, String>,
    /// http: request fields, with `${topic}`-style placeholders.
    pub body: BTreeMap<String, String>,
    /// http: time allowed for a reply.
    pub request_timeout: Duration,
}

impl Default for AuthzSource {
    fn default() -> Self {
        Self {
            kind: AuthzSourceType::File,
            enable: true,
            path: None,
            method: HttpMethod::Post,
            url: String::new(),
            headers: BTreeMap::new(),
            body: BTreeMap::new(),
            request_timeout: Duration::secs(5),
        }
    }
}

/// `authorization`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    /// Decision when no source has a matching rule.
    pub no_match: NoMatch,
    /// What a denied publish does.
    pub deny_action: DenyAction,
    /// Decision cache.
    pub cache: AuthzCache,
    /// Rule sources, consulted in order; at most one of each type.
    pub sources: Vec<AuthzSource>,
}

impl Authorization {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.cache.max_size >= 1,
            "authorization.cache.max_size",
            self.cache.max_size,
            "at least 1",
        )?;
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("authorization.sources.{}", i + 1);
            check(
                !self.sources[..i].iter().any(|s| s.kind == source.kind),
                &format!("{at}.type"),
                source.kind,
                "each source type at most once",
            )?;
            match source.kind {
                AuthzSourceType::File => check(
                    is_set(&source.path),
                    &format!("{at}.path"),
                    "unset",
                    "a rules file for type = file",
                )?,
                AuthzSourceType::Http => check(
                    !source.url.is_empty(),
                    &format!("{at}.url"),
                    "\"\"",
                    "a URL for type = http",
                )?,
                AuthzSourceType::BuiltInDatabase => {}
            }
        }
        Ok(())
    }
}
