//! `access_rules` of a listener, in esockd's syntax: `allow all`,
//! `deny all`, `allow 10.0.0.0/8`, `deny 192.168.1.1`, `allow ::1`,
//! `deny 2001:db8::/32`. One string may hold several rules separated by
//! commas (`"allow 10.0.1.0/24, deny all"`), as EMQX accepts. The first
//! rule that matches a client's address decides; an address no rule
//! matches is allowed.

use std::fmt;
use std::net::IpAddr;

/// What a rule does with the addresses it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Let the connection in.
    Allow,
    /// Close the connection at once.
    Deny,
}

/// An address block: an address and how many of its leading bits must
/// match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `10.0.0.0/8`, `192.168.1.1`, `2001:db8::/32` or `::1`.
    pub fn parse(text: &str) -> Result<Self, AccessRuleError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| AccessRuleError::BadAddress(addr.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(AccessRuleError::BadPrefix {
                        prefix: p.to_owned(),
                        max,
                    })
                }
            },
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in the block. An IPv4 client seen through an IPv6
    /// socket (`::ffff:10.1.2.3`) is matched as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` (left-aligned) agree.
fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    match bits {
        0 => true,
        bits => {
            let shift = 128 - u32::from(bits.min(128));
            (a >> shift) == (b >> shift)
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One rule: an action and the addresses it applies to (`None`: all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRule {
    /// Allow or deny.
    pub access: Access,
    /// The addresses; `None` for `all`.
    pub who: Option<IpNet>,
}

impl AccessRule {
    /// Parses one rule, `allow all` or `deny 10.0.0.0/8`.
    pub fn parse(text: &str) -> Result<Self, AccessRuleError> {
        let mut words = text.split_whitespace();
        let access = match words.next() {
            Some("allow") => Access::Allow,
            Some("deny") => Access::Deny,
            Some(other) => return Err(AccessRuleError::BadAction(other.to_owned())),
            None => return Err(AccessRuleError::Empty),
        };
        let who = match words.next() {
            Some("all") => None,
            Some(net) => Some(IpNet::parse(net)?),
            None => return Err(AccessRuleError::NoAddress),
        };
        if let Some(extra) = words.next() {
            return Err(AccessRuleError::Trailing(extra.to_owned()));
        }
        Ok(Self { access, who })
    }

    /// What the rule says about `ip`, if it applies to it.
    pub fn check(&self, ip: IpAddr) -> Option<Access> {
        match &self.who {
            None => Some(self.access),
            Some(net) if net.contains(ip) => Some(self.access),
            Some(_) => None,
        }
    }
}

/// A listener's rules, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRules(Vec<AccessRule>);

impl AccessRules {
    /// Parses every string of `access_rules` (each may hold several
    /// comma-separated rules). The error names the string that failed.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Self, (String, AccessRuleError)> {
        let mut parsed = Vec::new();
        for text in rules {
            let text = text.as_ref();
            for rule in text.split(',') {
                parsed.push(AccessRule::parse(rule).map_err(|e| (text.to_owned(), e))?);
            }
        }
        Ok(Self(parsed))
    }

    /// Whether a client at `ip` may connect: the first matching rule
    /// decides, and an address no rule matches is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .find_map(|rule| rule.check(ip))
            .is_none_or(|access| access == Access::Allow)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[AccessRule] {
        &self.0
    }
}

/// Why an access rule does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessRuleError {
    /// A blank rule (between two commas, or an empty string).
    #[error("empty rule")]
    Empty,
    /// The first word is neither `allow` nor `deny`.
    #[error("{0:?} is neither allow nor deny")]
    BadAction(String),
    /// `allow` or `deny` alone.
    #[error("no address after the action")]
    NoAddress,
    /// Something after the address.
    #[error("unexpected {0:?} after the address")]
    Trailing(String),
    /// Not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// A prefix length that is not a number within the address's bits.
    #[error("prefix length {prefix:?} is not between 0 and {max}")]
    BadPrefix {
        /// The prefix as written.
        prefix: String,
        /// 32 or 128.
        max: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn rules(list: &[&str]) -> AccessRules {
        AccessRules::parse(list).expect("test rules")
    }

    #[test]
    fn parses_the_esockd_forms() {
        let r = rules(&[
            "allow 10.0.0.0/8",
            "deny 192.168.1.1",
            "deny ::1",
            "allow all",
        ]);
        assert_eq!(r.rules().len(), 4);
        assert_eq!(r.rules()[0].access, Access::Allow);
        assert_eq!(
            r.rules()[1].who.map(|n| n.to_string()).as_deref(),
            Some("192.168.1.1/32")
        );
        assert_eq!(
            r.rules()[2].who.map(|n| n.to_string()).as_deref(),
            Some("::1/128")
        );
        assert_eq!(r.rules()[3].who, None);
        let comma = rules(&["allow 10.0.1.0/24, deny all"]);
        assert_eq!(comma.rules().len(), 2);
        assert_eq!(comma.rules()[1].access, Access::Deny);
        // Extra blanks are fine.
        assert_eq!(rules(&["  deny   10.0.0.1  "]).rules().len(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_rule() {
        let bad = |s: &str| AccessRules::parse(&[s]).expect_err(s).1;
        assert_eq!(
            bad("permit all"),
            AccessRuleError::BadAction("permit".into())
        );
        assert_eq!(bad("allow"), AccessRuleError::NoAddress);
        assert_eq!(bad(""), AccessRuleError::Empty);
        assert_eq!(bad("allow all,"), AccessRuleError::Empty);
        assert_eq!(
            bad("deny 10.0.0.0/8 now"),
            AccessRuleError::Trailing("now".into())
        );
        assert_eq!(
            bad("deny 10.0.0.256"),
            AccessRuleError::BadAddress("10.0.0.256".into())
        );
        assert_eq!(
            bad("deny localhost"),
            AccessRuleError::BadAddress("localhost".into())
        );
        assert_eq!(
            bad("deny 10.0.0.0/33"),
            AccessRuleError::BadPrefix {
                prefix: "33".into(),
                max: 32
            }
        );
        assert_eq!(
            bad("deny ::/129"),
            AccessRuleError::BadPrefix {
                prefix: "129".into(),
                max: 128
            }
        );
        assert!(matches!(
            bad("deny 10.0.0.0/x"),
            AccessRuleError::BadPrefix { .. }
        ));
        // The error names the string it came from.
        let (text, _) = AccessRules::parse(&["allow all", "deny 1.2.3.4/99"]).expect_err("bad");
        assert_eq!(text, "deny 1.2.3.4/99");
    }

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let net = IpNet::parse("10.1.0.0/16").expect("net");
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.7")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        // An IPv4 client through an IPv6 socket.
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        let host = IpNet::parse("127.0.0.2").expect("host");
        assert!(host.contains(ip("127.0.0.2")));
        assert!(!host.contains(ip("127.0.0.1")));
        let any4 = IpNet::parse("0.0.0.0/0").expect("any");
        assert!(any4.contains(ip("203.0.113.9")));
        assert!(!any4.contains(ip("2001:db8::1")));
        let v6 = IpNet::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let odd = IpNet::parse("192.168.1.128/25").expect("odd");
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.1.127")));
    }

    #[test]
    fn the_first_matching_rule_decides_and_no_match_allows() {
        let r = rules(&["allow 127.0.0.2", "deny 127.0.0.0/8"]);
        assert!(r.allows(ip("127.0.0.2")));
        assert!(!r.allows(ip("127.0.0.1")));
        assert!(r.allows(ip("10.0.0.1")), "no rule matches: allowed");
        let r = rules(&["deny all", "allow 127.0.0.1"]);
        assert!(!r.allows(ip("127.0.0.1")));
        assert!(AccessRules::default().allows(ip("1.2.3.4")));
        assert!(rules(&["allow all", "deny all"]).allows(ip("1.2.3.4")));
    }
}
