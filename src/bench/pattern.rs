//! Topic and client-id patterns, and the topic matching used to know how
//! many deliveries a publish should cause.
//!
//! Patterns follow emqtt-bench: `%i` is the client's index (1-based, as in
//! emqtt-bench) and `%c` its client id. Any other `%` sequence is kept as is.

/// Expands `%i` and `%c` in `pattern` for the client with this index and id.
pub(crate) fn expand(pattern: &str, index: usize, client_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.peek() {
            Some('i') => {
                chars.next();
                out.push_str(&index.to_string());
            }
            Some('c') => {
                chars.next();
                out.push_str(client_id);
            }
            _ => out.push('%'),
        }
    }
    out
}

/// A subscription as the broker routes it: a plain filter, or one member of
/// a shared-subscription group (`$share/<group>/<filter>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route<'a> {
    /// The shared group, if any.
    pub(crate) group: Option<&'a str>,
    /// The topic filter proper.
    pub(crate) filter: &'a str,
}

impl<'a> Route<'a> {
    /// Parses a subscription string.
    pub(crate) fn parse(subscription: &'a str) -> Self {
        if let Some(rest) = subscription.strip_prefix("$share/") {
            if let Some((group, filter)) = rest.split_once('/') {
                return Self {
                    group: Some(group),
                    filter,
                };
            }
        }
        Self {
            group: None,
            filter: subscription,
        }
    }
}

/// Whether `filter` (with `+` and `#` wildcards) matches `topic`
/// (MQTT-4.7.1; topics starting with `$` are not matched by a leading
/// wildcard, MQTT-4.7.2-1).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match part {
            "#" => return true,
            "+" => {
                if levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}

/// How many deliveries one publish on `topic` causes, given every
/// subscription of the run: one per matching plain subscription, one per
/// shared group that has a matching member.
pub(crate) fn fanout(topic: &str, subscriptions: &[String]) -> u64 {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for subscription in subscriptions {
        let route = Route::parse(subscription);
        if !matches(route.filter, topic) {
            continue;
        }
        match route.group {
            None => count += 1,
            Some(group) => {
                if !groups.contains(&(group, route.filter)) {
                    groups.push((group, route.filter));
                    count += 1;
                }
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_index_and_client_id() {
        assert_eq!(expand("bench/%i/t", 7, "c-7"), "bench/7/t");
        assert_eq!(expand("%c/%i/%c", 12, "pub"), "pub/12/pub");
        assert_eq!(expand("plain/topic", 1, "x"), "plain/topic");
    }

    #[test]
    fn keeps_unknown_and_trailing_percent() {
        assert_eq!(expand("a%x%", 3, "c"), "a%x%");
        assert_eq!(expand("%%i", 3, "c"), "%3");
    }

    #[test]
    fn matches_wildcards() {
        assert!(matches("bench/#", "bench/1/t"));
        assert!(matches("bench/#", "bench"));
        assert!(matches("bench/+/t", "bench/1/t"));
        assert!(!matches("bench/+/t", "bench/1/u"));
        assert!(!matches("bench/+", "bench/1/t"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("+/+", "/x"));
    }

    #[test]
    fn parses_shared_routes() {
        assert_eq!(
            Route::parse("$share/g/a/#"),
            Route {
                group: Some("g"),
                filter: "a/#"
            }
        );
        assert_eq!(
            Route::parse("a/b"),
            Route {
                group: None,
                filter: "a/b"
            }
        );
    }

    #[test]
    fn fanout_counts_plain_subscribers_and_shared_groups_once() {
        let subs: Vec<String> = [
            "t/1",
            "t/#",
            "$share/g/t/#",
            "$share/g/t/#",
            "$share/h/t/+",
            "u/#",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(fanout("t/1", &subs), 4);
        assert_eq!(fanout("t/2", &subs), 3);
        assert_eq!(fanout("v", &subs), 0);
    }
}
