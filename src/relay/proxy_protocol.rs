//! The PROXY protocol (v1 text, v2 binary) as HAProxy specifies it: written to upstreams so
//! they see the real client, and read from a front balancer.

use std::net::{IpAddr, SocketAddr};

use super::config::ProxyVersion;

/// The 12-byte signature that starts every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest header we accept (v1 is at most 107 bytes; v2 with TLVs can be longer).
pub const MAX_HEADER: usize = 536;

/// Encodes a header announcing a connection from `src` to `dst`.
pub fn encode(version: ProxyVersion, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    // Mixed families cannot be expressed: map v4 addresses into v6 when needed.
    let (src_ip, dst_ip) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V6(b)) => (IpAddr::V6(a.to_ipv6_mapped()), IpAddr::V6(b)),
        (IpAddr::V6(a), IpAddr::V4(b)) => (IpAddr::V6(a), IpAddr::V6(b.to_ipv6_mapped())),
        other => other,
    };
    match version {
        ProxyVersion::V1 => {
            let fam = if src_ip.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {fam} {src_ip} {dst_ip} {} {}\r\n",
                src.port(),
                dst.port()
            )
            .into_bytes()
        }
        ProxyVersion::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY command
            match (src_ip, dst_ip) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.push(0x11);
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    out.push(0x21);
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                _ => unreachable!("families were unified above"),
            }
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
            out
        }
    }
}

/// What a parsed header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header occupies at the start of the stream.
    pub len: usize,
    /// The original client and destination; `None` for `UNKNOWN`/`LOCAL`.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

/// Why a header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// More bytes are needed to decide.
    #[error("incomplete PROXY header")]
    Incomplete,
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
}

/// Parses a v1 or v2 header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Header, ParseError> {
    if buf.len() >= 12 && buf[..12] == V2_SIGNATURE {
        return parse_v2(buf);
    }
    if V2_SIGNATURE.starts_with(buf) && !buf.is_empty() && buf.len() < 12 && buf[0] == b'\r' {
        return Err(ParseError::Incomplete);
    }
    if !b"PROXY ".starts_with(&buf[..buf.len().min(6)]) {
        return Err(ParseError::Malformed(
            "does not start with PROXY or the v2 signature",
        ));
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Header, ParseError> {
    let Some(end) = buf.windows(2).take(107).position(|w| w == b"\r\n") else {
        return if buf.len() >= 107 {
            Err(ParseError::Malformed("v1 header longer than 107 bytes"))
        } else {
            Err(ParseError::Incomplete)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::Malformed("not ASCII"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let len = end + 2;
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Header { len, addrs: None }),
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| {
                s.parse::<IpAddr>()
                    .map_err(|_| ParseError::Malformed("bad address"))
            };
            let port = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| ParseError::Malformed("bad port"))
            };
            let (s, d) = (ip(src)?, ip(dst)?);
            if (*fam == "TCP4") != (s.is_ipv4() && d.is_ipv4()) {
                return Err(ParseError::Malformed("address family mismatch"));
            }
            Ok(Header {
                len,
                addrs: Some((
                    SocketAddr::new(s, port(sport)?),
                    SocketAddr::new(d, port(dport)?),
                )),
            })
        }
        _ => Err(ParseError::Malformed("v1 header has the wrong fields")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Header, ParseError> {
    if buf.len() < 16 {
        return Err(ParseError::Incomplete);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ParseError::Malformed(
            "v2 header with a version other than 2",
        ));
    }
    let body = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + body;
    if len > MAX_HEADER {
        return Err(ParseError::Malformed("v2 header too long"));
    }
    if buf.len() < len {
        return Err(ParseError::Incomplete);
    }
    let b = &buf[16..len];
    let addrs = match (ver_cmd & 0x0f, buf[13]) {
        (0, _) => None, // LOCAL: health check from the balancer itself
        (1, 0x11) if b.len() >= 12 => {
            let s = IpAddr::from(<[u8; 4]>::try_from(&b[0..4]).expect("4 bytes"));
            let d = IpAddr::from(<[u8; 4]>::try_from(&b[4..8]).expect("4 bytes"));
            Some((
                SocketAddr::new(s, u16::from_be_bytes([b[8], b[9]])),
                SocketAddr::new(d, u16::from_be_bytes([b[10], b[11]])),
            ))
        }
        (1, 0x21) if b.len() >= 36 => {
            let s = IpAddr::from(<[u8; 16]>::try_from(&b[0..16]).expect("16 bytes"));
            let d = IpAddr::from(<[u8; 16]>::try_from(&b[16..32]).expect("16 bytes"));
            Some((
                SocketAddr::new(s, u16::from_be_bytes([b[32], b[33]])),
                SocketAddr::new(d, u16::from_be_bytes([b[34], b[35]])),
            ))
        }
        (1, 0x00) => None,
        (1, _) => {
            return Err(ParseError::Malformed(
                "v2 header with an unsupported family",
            ));
        }
        _ => return Err(ParseError::Malformed("v2 header with an unknown command")),
    };
    Ok(Header { len, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_round_trip_and_exact_text() {
        let h = encode(ProxyVersion::V1, a("192.0.2.1:5000"), a("10.0.0.1:443"));
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 10.0.0.1 5000 443\r\n");
        let mut with_payload = h.clone();
        with_payload.extend_from_slice(b"GET /");
        let p = parse(&with_payload).unwrap();
        assert_eq!(p.len, h.len());
        assert_eq!(p.addrs, Some((a("192.0.2.1:5000"), a("10.0.0.1:443"))));
    }

    #[test]
    fn v2_round_trip_v4_and_v6() {
        for (src, dst) in [
            ("192.0.2.1:5000", "10.0.0.1:443"),
            ("[2001:db8::1]:5000", "[2001:db8::2]:443"),
        ] {
            let h = encode(ProxyVersion::V2, a(src), a(dst));
            let p = parse(&h).unwrap();
            assert_eq!(p.len, h.len());
            assert_eq!(p.addrs, Some((a(src), a(dst))));
        }
    }

    #[test]
    fn incomplete_and_malformed() {
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Err(ParseError::Incomplete));
        assert_eq!(parse(b"\r\n\r\n\0"), Err(ParseError::Incomplete));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 nope 1 2\r\n"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(parse(&[b'P'; 200]), Err(ParseError::Malformed(_))));
        let mut bad_v2 = V2_SIGNATURE.to_vec();
        bad_v2.extend_from_slice(&[0x31, 0x11, 0, 0]);
        assert!(matches!(parse(&bad_v2), Err(ParseError::Malformed(_))));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().addrs, None);
    }
}
