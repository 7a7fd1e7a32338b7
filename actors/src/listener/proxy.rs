//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`), versions 1
//! (text) and 2 (binary), as sent by a load balancer in front of the
//! listener to name the client it connects for.
//!
//! [`parse`] is pure and works on any prefix of the stream: it says
//! whether the bytes so far are an incomplete header, a complete one (and
//! how long it is), or not a header at all. [`read_header`] drives it on a
//! socket without reading past the header, so that MQTT bytes sent in the
//! same segment stay in the socket for the channel actor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The version 2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1 starts with this.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest version 1 header, CRLF included.
const V1_MAX: usize = 107;
/// Bytes peeked at a time while the header's length is not known yet
/// (any version 1 header fits, and a version 2 header's length field).
const PEEK: usize = V1_MAX + 1;

/// What the bytes received so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A proper prefix of a header: every byte of it belongs to the header.
    Incomplete,
    /// A whole header of `len` bytes.
    Complete {
        /// The client's address, or `None` when the connection's own
        /// address stands (v1 `UNKNOWN`, v2 `LOCAL`, v2 families other
        /// than TCP over IPv4 or IPv6).
        source: Option<SocketAddr>,
        /// The header's length; what follows is the client's data.
        len: usize,
    },
}

/// Why a connection's first bytes are not a PROXY header.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Neither signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// A version 1 header that breaks the format.
    #[error("malformed PROXY v1 header: {0}")]
    BadV1(&'static str),
    /// A version 2 header that breaks the format.
    #[error("malformed PROXY v2 header: {0}")]
    BadV2(&'static str),
    /// The connection closed before the header was complete.
    #[error("connection closed before the PROXY header was complete")]
    Closed,
    /// Reading failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Looks at the first bytes of a connection.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let head = buf.len().min(V1_PREFIX.len());
    if buf[..head] != V1_PREFIX[..head] {
        return Err(ProxyError::NotProxy);
    }
    let Some(cr) = buf.iter().position(|&b| b == b'\r') else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::BadV1("no CRLF within 107 bytes"));
        }
        return Ok(Parsed::Incomplete);
    };
    if cr + 2 > V1_MAX {
        return Err(ProxyError::BadV1("longer than 107 bytes"));
    }
    match buf.get(cr + 1) {
        None => return Ok(Parsed::Incomplete),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::BadV1("CR not followed by LF")),
    }
    let line = std::str::from_utf8(&buf[..cr]).map_err(|_| ProxyError::BadV1("not ASCII text"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let len = cr + 2;
    match fields.get(1).copied() {
        Some("UNKNOWN") => Ok(Parsed::Complete { source: None, len }),
        Some(proto @ ("TCP4" | "TCP6")) => {
            let [_, _, src, dst, sport, dport] = fields[..] else {
                return Err(ProxyError::BadV1("expected PROXY TCPx SRC DST SPORT DPORT"));
            };
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip = if proto == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                };
                ip.map_err(|_| ProxyError::BadV1("bad address"))
            };
            let port = |s: &str| s.parse::<u16>().map_err(|_| ProxyError::BadV1("bad port"));
            let (src, _dst, sport, _dport) = (ip(src)?, ip(dst)?, port(sport)?, port(dport)?);
            Ok(Parsed::Complete {
                source: Some(SocketAddr::new(src, sport)),
                len,
            })
        }
        _ => Err(ProxyError::BadV1("protocol is not TCP4, TCP6 or UNKNOWN")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let head = buf.len().min(V2_SIGNATURE.len());
    if buf[..head] != V2_SIGNATURE[..head] {
        return Err(ProxyError::NotProxy);
    }
    let Some(total) = v2_len(buf) else {
        // The version and command are checked once they are here.
        if let Some(&ver_cmd) = buf.get(12) {
            check_ver_cmd(ver_cmd)?;
        }
        return Ok(Parsed::Incomplete);
    };
    let command = check_ver_cmd(buf[12])?;
    if buf.len() < total {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[16..total];
    if command == 0 {
        // LOCAL: the proxy's own connection (health checks); the socket's
        // address stands and whatever the block holds is skipped.
        return Ok(Parsed::Complete {
            source: None,
            len: total,
        });
    }
    let source = match buf[13] {
        // TCP over IPv4.
        0x11 => {
            let a: [u8; 12] = body
                .get(..12)
                .and_then(|a| a.try_into().ok())
                .ok_or(ProxyError::BadV2("address block too short for IPv4"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([a[8], a[9]]),
            ))
        }
        // TCP over IPv6.
        0x21 => {
            let a: [u8; 36] = body
                .get(..36)
                .and_then(|a| a.try_into().ok())
                .ok_or(ProxyError::BadV2("address block too short for IPv6"))?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(ip);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // UNSPEC, UDP, UNIX: not a TCP client address; the socket's own
        // address stands, as the specification asks of receivers.
        _ => None,
    };
    Ok(Parsed::Complete { source, len: total })
}

/// The whole v2 header's length, once its fixed part is here.
fn v2_len(buf: &[u8]) -> Option<usize> {
    let len = buf.get(14..16)?;
    Some(16 + usize::from(u16::from_be_bytes([len[0], len[1]])))
}

/// The command (0 LOCAL, 1 PROXY) of a version 2 header.
fn check_ver_cmd(ver_cmd: u8) -> Result<u8, ProxyError> {
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    match ver_cmd & 0x0F {
        cmd @ (0 | 1) => Ok(cmd),
        _ => Err(ProxyError::BadV2("command is neither LOCAL nor PROXY")),
    }
}

/// Reads a connection's PROXY header and nothing after it: the bytes are
/// peeked, and only those that belong to the header are taken off the
/// socket. Returns the client's address the header names (`None`: the
/// socket's own). The caller bounds the time it may take.
pub async fn read_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyError> {
    // The header bytes taken off the socket so far.
    let mut taken: Vec<u8> = Vec::new();
    let mut peeked: Vec<u8> = Vec::new();
    loop {
        let known = v2_len(&taken).filter(|_| taken.starts_with(&V2_SIGNATURE));
        let want = known.map_or(PEEK, |total| total.saturating_sub(taken.len()).max(1));
        peeked.resize(want, 0);
        let n = stream.peek(&mut peeked).await?;
        if n == 0 {
            return Err(ProxyError::Closed);
        }
        let mut view = taken.clone();
        view.extend_from_slice(&peeked[..n]);
        match parse(&view)? {
            Parsed::Complete { source, len } => {
                let rest = len - taken.len();
                stream.read_exact(&mut peeked[..rest]).await?;
                return Ok(source);
            }
            Parsed::Incomplete => {
                // All of it is header: take it, and wait for more.
                stream.read_exact(&mut peeked[..n]).await?;
                taken = view;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        let len = u16::try_from(addrs.len() + tlvs.len()).expect("small");
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn v2_ipv4(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut a = src.to_vec();
        a.extend_from_slice(&[10, 0, 0, 1]);
        a.extend_from_slice(&sport.to_be_bytes());
        a.extend_from_slice(&1883u16.to_be_bytes());
        v2(1, 0x11, &a, &[])
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    /// Every proper prefix is incomplete, the whole is complete.
    fn complete_only_at_the_end(header: &[u8], source: Option<SocketAddr>) {
        for cut in 0..header.len() {
            assert_eq!(
                parse(&header[..cut]).expect("a prefix is no error"),
                Parsed::Incomplete,
                "prefix of {cut} bytes"
            );
        }
        let mut with_data = header.to_vec();
        with_data.extend_from_slice(&[0x10, 0x0c, 0, 4]);
        for buf in [header, &with_data[..]] {
            assert_eq!(
                parse(buf).expect("whole header"),
                Parsed::Complete {
                    source,
                    len: header.len()
                }
            );
        }
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        complete_only_at_the_end(
            b"PROXY TCP4 192.168.0.9 10.0.0.1 56324 1883\r\n",
            Some(addr("192.168.0.9:56324")),
        );
        complete_only_at_the_end(
            b"PROXY TCP6 2001:db8::7 ::1 4000 1883\r\n",
            Some(addr("[2001:db8::7]:4000")),
        );
        complete_only_at_the_end(b"PROXY UNKNOWN\r\n", None);
        complete_only_at_the_end(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None);
    }

    #[test]
    fn v1_errors() {
        let bad = |b: &[u8]| parse(b).expect_err(&String::from_utf8_lossy(b));
        assert!(matches!(
            bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(
            bad(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(
            bad(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(
            bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(
            bad(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(
            bad(b"PROXY TCP4 1.2.3.4\rX"),
            ProxyError::BadV1(_)
        ));
        assert!(matches!(bad(&[b'P'; 120]), ProxyError::NotProxy));
        let mut long = b"PROXY ".to_vec();
        long.resize(V1_MAX, b'x');
        assert!(matches!(bad(&long), ProxyError::BadV1(_)));
        // An MQTT CONNECT where the header should be.
        assert!(matches!(bad(&[0x10, 0x0c, 0, 4]), ProxyError::NotProxy));
        assert!(matches!(bad(b"PROXX"), ProxyError::NotProxy));
    }

    #[test]
    fn v2_ipv4_ipv6_local_and_tlvs() {
        complete_only_at_the_end(
            &v2_ipv4([203, 0, 113, 5], 40000),
            Some(addr("203.0.113.5:40000")),
        );
        let mut a = Vec::new();
        a.extend_from_slice(&addr_v6("2001:db8::5"));
        a.extend_from_slice(&addr_v6("::1"));
        a.extend_from_slice(&41000u16.to_be_bytes());
        a.extend_from_slice(&1883u16.to_be_bytes());
        complete_only_at_the_end(&v2(1, 0x21, &a, &[]), Some(addr("[2001:db8::5]:41000")));
        // LOCAL keeps the socket's address, whatever the block holds.
        complete_only_at_the_end(&v2(0, 0x00, &[], &[]), None);
        complete_only_at_the_end(&v2(0, 0x11, &[0; 12], &[]), None);
        // UNSPEC family with PROXY: the socket's address as well.
        complete_only_at_the_end(&v2(1, 0x00, &[], &[]), None);
        // TLVs after the addresses are skipped.
        let mut ipv4 = vec![198, 51, 100, 7, 10, 0, 0, 1];
        ipv4.extend_from_slice(&5u16.to_be_bytes());
        ipv4.extend_from_slice(&1883u16.to_be_bytes());
        let tlv = [0x04, 0x00, 0x03, b'a', b'b', b'c'];
        complete_only_at_the_end(&v2(1, 0x11, &ipv4, &tlv), Some(addr("198.51.100.7:5")));
    }

    fn addr_v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().expect("v6").octets()
    }

    #[test]
    fn v2_errors() {
        let mut bad_version = v2_ipv4([1, 2, 3, 4], 1);
        bad_version[12] = 0x11;
        assert!(matches!(
            parse(&bad_version[..13]),
            Err(ProxyError::BadV2(_))
        ));
        let mut bad_command = v2_ipv4([1, 2, 3, 4], 1);
        bad_command[12] = 0x22;
        assert!(matches!(parse(&bad_command), Err(ProxyError::BadV2(_))));
        // An IPv4 family whose block is too short.
        assert!(matches!(
            parse(&v2(1, 0x11, &[1, 2, 3], &[])),
            Err(ProxyError::BadV2(_))
        ));
        assert!(matches!(parse(b"\r\n\r\nX"), Err(ProxyError::NotProxy)));
    }

    /// A header in pieces, through a real socket: nothing after it is
    /// taken off the socket.
    #[tokio::test]
    async fn read_header_takes_the_header_and_nothing_more() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        for header in [
            b"PROXY TCP4 192.0.2.1 10.0.0.1 1234 1883\r\n".to_vec(),
            v2_ipv4([192, 0, 2, 1], 1234),
        ] {
            let mut client = TcpStream::connect(at).await.expect("connect");
            let (mut server, _) = listener.accept().await.expect("accept");
            let (first, rest) = header.split_at(9);
            client.write_all(first).await.expect("write");
            let reader = tokio::spawn(async move {
                let source = read_header(&mut server).await;
                (source, server)
            });
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut rest = rest.to_vec();
            rest.extend_from_slice(b"MQTT bytes");
            client.write_all(&rest).await.expect("write");
            let (source, mut server) = reader.await.expect("join");
            assert_eq!(source.expect("parsed"), Some(addr("192.0.2.1:1234")));
            let mut after = [0u8; 10];
            server
                .read_exact(&mut after)
                .await
                .expect("the data after the header");
            assert_eq!(&after, b"MQTT bytes");
        }
    }
}
