//! Mountpoints (EMQX's `listeners.<type>.<name>.mountpoint`): a prefix put
//! in front of every topic a listener's clients publish to or subscribe to,
//! and taken off the topics of the messages they receive, so that each
//! listener (or each client, with placeholders) sees a topic space of its
//! own.
//!
//! A mountpoint is a template: `${clientid}` and `${username}` are replaced
//! by the client's at CONNECT. A client without a username keeps
//! `${username}` as written (EMQX leaves an unknown value unreplaced).

use std::fmt;

use crate::codec::ByteStr;

/// The placeholder replaced by the client id.
const CLIENTID: &str = "${clientid}";
/// The placeholder replaced by the username.
const USERNAME: &str = "${username}";

/// Why a mountpoint template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountpointError {
    /// A `${...}` other than `${clientid}` and `${username}`.
    #[error("unknown placeholder {0}: expected ${{clientid}} or ${{username}}")]
    UnknownPlaceholder(String),
    /// A wildcard or U+0000: a topic name may hold neither.
    #[error("a mountpoint may not contain +, # or U+0000")]
    InvalidCharacter,
    /// Longer than a topic may be (65535 bytes).
    #[error("a mountpoint may not be longer than 65535 bytes")]
    TooLong,
}

/// Why a client cannot be given its mountpoint: the value a placeholder
/// takes would put a wildcard into its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountpointRefusal {
    /// The client id holds `+` or `#`.
    ClientId,
    /// The username holds `+` or `#`.
    Username,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    ClientId,
    Username,
}

/// A parsed mountpoint template (never empty: no mountpoint is `None`).
#[derive(Clone, PartialEq, Eq)]
pub struct Mountpoint {
    template: Box<str>,
    parts: Box<[Part]>,
}

impl fmt::Debug for Mountpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mountpoint").field(&self.template).finish()
    }
}

/// Whether `s` holds a character no topic name may hold.
fn has_wildcard(s: &str) -> bool {
    s.contains(['+', '#', '\0'])
}

impl Mountpoint {
    /// Parses a template; `Ok(None)` for the empty string (no mountpoint).
    pub fn parse(template: &str) -> Result<Option<Self>, MountpointError> {
        if template.is_empty() {
            return Ok(None);
        }
        if template.len() > usize::from(u16::MAX) {
            return Err(MountpointError::TooLong);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(start) = rest.find("${") else {
                parts.push(Part::Text(rest.into()));
                break;
            };
            if start > 0 {
                parts.push(Part::Text(rest[..start].into()));
            }
            rest = &rest[start..];
            if let Some(after) = rest.strip_prefix(CLIENTID) {
                parts.push(Part::ClientId);
                rest = after;
            } else if let Some(after) = rest.strip_prefix(USERNAME) {
                parts.push(Part::Username);
                rest = after;
            } else {
                let end = rest.find('}').map_or(rest.len(), |i| i + 1);
                return Err(MountpointError::UnknownPlaceholder(rest[..end].to_owned()));
            }
        }
        let text_ok = parts.iter().all(|part| match part {
            Part::Text(text) => !has_wildcard(text),
            Part::ClientId | Part::Username => true,
        });
        if !text_ok {
            return Err(MountpointError::InvalidCharacter);
        }
        Ok(Some(Self {
            template: template.into(),
            parts: parts.into(),
        }))
    }

    /// The template as configured.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Checks that the placeholders of this template can take a client's
    /// values: a value with a wildcard would make its topics invalid (or
    /// let it subscribe to other clients' topics).
    pub fn check(&self, client_id: &str, username: Option<&str>) -> Result<(), MountpointRefusal> {
        for part in self.parts.iter() {
            match part {
                Part::ClientId if has_wildcard(client_id) => {
                    return Err(MountpointRefusal::ClientId)
                }
                Part::Username if username.is_some_and(has_wildcard) => {
                    return Err(MountpointRefusal::Username)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The pieces of the prefix for this client, in order.
    fn pieces<'a>(
        &'a self,
        client_id: &'a str,
        username: Option<&'a str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.parts.iter().map(move |part| match part {
            Part::Text(text) => &**text,
            Part::ClientId => client_id,
            Part::Username => username.unwrap_or(USERNAME),
        })
    }

    /// `topic` (a name or a filter) with this client's prefix in front.
    pub fn mount(&self, client_id: &str, username: Option<&str>, topic: &str) -> ByteStr {
        let len: usize = self.pieces(client_id, username).map(str::len).sum();
        let mut mounted = String::with_capacity(len + topic.len());
        for piece in self.pieces(client_id, username) {
            mounted.push_str(piece);
        }
        mounted.push_str(topic);
        ByteStr::from(mounted)
    }

    /// The length of this client's prefix when `topic` starts with it (the
    /// bytes to leave out when the topic is sent to the client), else 0.
    pub fn prefix_len(&self, client_id: &str, username: Option<&str>, topic: &str) -> usize {
        let mut rest = topic;
        for piece in self.pieces(client_id, username) {
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return 0,
            }
        }
        topic.len() - rest.len()
    }
}

/// A subscription filter as a client sent it, with the prefix inserted
/// where its topic filter starts: after `$share/{group}/`, `$queue/` or
/// `$exclusive/` (when `exclusive` says such filters are recognised).
pub fn mount_filter(
    mountpoint: &Mountpoint,
    client_id: &str,
    username: Option<&str>,
    filter: &str,
    exclusive: bool,
) -> ByteStr {
    let split = filter_start(filter, exclusive);
    let (head, tail) = filter.split_at(split);
    let mounted = mountpoint.mount(client_id, username, tail);
    if head.is_empty() {
        return mounted;
    }
    ByteStr::from(format!("{head}{mounted}"))
}

/// Where the topic filter starts in a subscription filter as sent.
fn filter_start(filter: &str, exclusive: bool) -> usize {
    if let Some(rest) = filter.strip_prefix("$share/") {
        // `$share/{group}/{filter}`; a malformed one is left to the parser.
        return rest.find('/').map_or(0, |i| "$share/".len() + i + 1);
    }
    for prefix in ["$queue/", "$exclusive/"] {
        if filter.starts_with(prefix) && (exclusive || prefix == "$queue/") {
            return prefix.len();
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(template: &str) -> Mountpoint {
        Mountpoint::parse(template)
            .expect("valid")
            .expect("not empty")
    }

    #[test]
    fn templates_are_parsed_and_refused() {
        assert_eq!(Mountpoint::parse(""), Ok(None));
        assert_eq!(mp("dev/").template(), "dev/");
        assert_eq!(
            Mountpoint::parse("t/${clientid}/${peerhost}/"),
            Err(MountpointError::UnknownPlaceholder("${peerhost}".into()))
        );
        assert_eq!(
            Mountpoint::parse("t/${client"),
            Err(MountpointError::UnknownPlaceholder("${client".into()))
        );
        for bad in ["a/+/", "#", "a\0"] {
            assert_eq!(
                Mountpoint::parse(bad),
                Err(MountpointError::InvalidCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(
            Mountpoint::parse(&"a".repeat(70_000)),
            Err(MountpointError::TooLong)
        );
    }

    #[test]
    fn placeholders_take_the_clients_values() {
        let m = mp("${username}/${clientid}/x/");
        assert_eq!(m.mount("c1", Some("u1"), "t/1"), "u1/c1/x/t/1");
        // No username: the placeholder stays as written.
        assert_eq!(m.mount("c1", None, "t"), "${username}/c1/x/t");
        assert_eq!(mp("static/").mount("c", None, "a"), "static/a");
        assert_eq!(m.check("c1", Some("u1")), Ok(()));
        assert_eq!(m.check("c+", Some("u1")), Err(MountpointRefusal::ClientId));
        assert_eq!(m.check("c", Some("u#")), Err(MountpointRefusal::Username));
        // A placeholder the template does not use is not checked.
        assert_eq!(mp("d/${clientid}/").check("c", Some("u#")), Ok(()));
    }

    #[test]
    fn the_prefix_is_found_only_when_the_topic_starts_with_it() {
        let m = mp("tenant/${clientid}/");
        assert_eq!(
            m.prefix_len("c1", None, "tenant/c1/a/b"),
            "tenant/c1/".len()
        );
        assert_eq!(m.prefix_len("c1", None, "tenant/c2/a/b"), 0);
        assert_eq!(m.prefix_len("c1", None, "tenant/c"), 0);
        assert_eq!(m.prefix_len("c1", None, "other"), 0);
    }

    #[test]
    fn filters_are_mounted_after_their_share_queue_or_exclusive_prefix() {
        let m = mp("mp/");
        let mount = |f: &str, excl: bool| mount_filter(&m, "c", None, f, excl);
        assert_eq!(mount("a/#", false), "mp/a/#");
        assert_eq!(mount("$share/g/a/+", false), "$share/g/mp/a/+");
        assert_eq!(mount("$queue/a", false), "$queue/mp/a");
        assert_eq!(mount("$exclusive/a", true), "$exclusive/mp/a");
        // Without exclusive subscriptions `$exclusive/a` is a plain filter.
        assert_eq!(mount("$exclusive/a", false), "mp/$exclusive/a");
        assert_eq!(mount("$share/g", false), "mp/$share/g");
    }
}
