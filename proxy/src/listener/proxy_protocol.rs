//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) that the NLB puts before
//! a connection's first byte, and what it says about the real client.
//!
//! Exactly the header's bytes are read and not one more: whatever follows (a TLS ClientHello,
//! an HTTP request in the same packet) stays in the stream for the next layer. That rules out a
//! read buffer, so v1 is read byte by byte after its prefix; the NLB sends only v2, whose length
//! is known after 16 bytes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{SocketDigest, Stream};
use tokio::io::{AsyncRead, AsyncReadExt};

/// v1's longest header, CRLF included (HAProxy's spec, section 2.1).
const V1_MAX_LENGTH: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED_LENGTH: usize = 16;
/// Longest address-and-TLV part accepted in v2. The spec allows 65535 bytes; the NLB sends the
/// addresses and a VPC endpoint TLV, well under 100.
const V2_MAX_PAYLOAD: usize = 1024;
/// Both signatures are at least this long, so reading it never takes a byte of the payload.
const SIGNATURE_PROBE: usize = V1_PREFIX.len();

/// The client and the address it connected to, as the load balancer saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxiedAddresses {
    pub(crate) client: SocketAddr,
    pub(crate) destination: SocketAddr,
}

/// Why a connection's PROXY protocol header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before sending anything")]
    Closed,
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(#[from] io::Error),
    #[error(
        "the connection does not start with a PROXY protocol header; is proxy protocol enabled \
         on the load balancer's target group?"
    )]
    Missing,
    #[error("the PROXY protocol v1 header is longer than {V1_MAX_LENGTH} bytes")]
    V1TooLong,
    #[error(
        "the PROXY protocol v2 header announces {0} bytes of addresses and TLVs, more than the \
         {V2_MAX_PAYLOAD} accepted"
    )]
    V2TooLong(usize),
    #[error("malformed PROXY protocol v1 header: {0}")]
    V1(String),
    #[error("malformed PROXY protocol v2 header: {0}")]
    V2(String),
}

/// Reads one PROXY protocol header within `timeout`.
///
/// `Ok(None)` means the header carries no client address to believe (a v2 `LOCAL` command such
/// as the NLB's health checks, v1 `UNKNOWN`, or a non-TCP address family): the socket's own
/// addresses stand.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<Option<ProxiedAddresses>, ProxyHeaderError> {
    tokio::time::timeout(timeout, read_header_now(stream))
        .await
        .map_err(|_| ProxyHeaderError::Timeout(timeout))?
}

async fn read_header_now<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<ProxiedAddresses>, ProxyHeaderError> {
    let mut header = vec![0; SIGNATURE_PROBE];
    // A connection closed before its first byte is a TCP health check or a port scan, not a
    // broken header; the caller logs it more quietly.
    let first = stream.read(&mut header).await?;
    if first == 0 {
        return Err(ProxyHeaderError::Closed);
    }
    stream.read_exact(&mut header[first..]).await?;
    if header == V1_PREFIX {
        read_v1(stream, header).await
    } else if ppp::v2::PROTOCOL_PREFIX.starts_with(&header) {
        read_v2(stream, header).await
    } else {
        Err(ProxyHeaderError::Missing)
    }
}

async fn read_v1<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut header: Vec<u8>,
) -> Result<Option<ProxiedAddresses>, ProxyHeaderError> {
    while !header.ends_with(b"\r\n") {
        if header.len() == V1_MAX_LENGTH {
            return Err(ProxyHeaderError::V1TooLong);
        }
        header.push(stream.read_u8().await?);
    }
    let parsed = ppp::v1::Header::try_from(header.as_slice())
        .map_err(|err| ProxyHeaderError::V1(err.to_string()))?;
    Ok(match parsed.addresses {
        ppp::v1::Addresses::Tcp4(ip) => Some(ProxiedAddresses {
            client: (ip.source_address, ip.source_port).into(),
            destination: (ip.destination_address, ip.destination_port).into(),
        }),
        ppp::v1::Addresses::Tcp6(ip) => Some(ProxiedAddresses {
            client: (ip.source_address, ip.source_port).into(),
            destination: (ip.destination_address, ip.destination_port).into(),
        }),
        ppp::v1::Addresses::Unknown => None,
    })
}

async fn read_v2<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut header: Vec<u8>,
) -> Result<Option<ProxiedAddresses>, ProxyHeaderError> {
    header.resize(V2_FIXED_LENGTH, 0);
    stream.read_exact(&mut header[SIGNATURE_PROBE..]).await?;
    let payload = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if payload > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::V2TooLong(payload));
    }
    header.resize(V2_FIXED_LENGTH + payload, 0);
    stream.read_exact(&mut header[V2_FIXED_LENGTH..]).await?;
    let parsed = ppp::v2::Header::try_from(header.as_slice())
        .map_err(|err| ProxyHeaderError::V2(err.to_string()))?;
    if parsed.command == ppp::v2::Command::Local || parsed.protocol != ppp::v2::Protocol::Stream {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        ppp::v2::Addresses::IPv4(ip) => Some(ProxiedAddresses {
            client: (ip.source_address, ip.source_port).into(),
            destination: (ip.destination_address, ip.destination_port).into(),
        }),
        ppp::v2::Addresses::IPv6(ip) => Some(ProxiedAddresses {
            client: (ip.source_address, ip.source_port).into(),
            destination: (ip.destination_address, ip.destination_port).into(),
        }),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

/// Makes Pingora see the proxied client: `session.client_addr()` and `server_addr()` read the
/// stream's socket digest.
pub(crate) fn record(stream: &mut Stream, addresses: ProxiedAddresses) {
    // The digest keeps the real socket's descriptor for TCP_INFO and buffer sizes. A stream
    // that is not a Pingora TCP stream has none to offer; -1 makes those lookups fail cleanly.
    let fd = stream
        .as_ref()
        .as_any()
        .downcast_ref::<L4Stream>()
        .map_or(-1, std::os::fd::AsRawFd::as_raw_fd);
    let digest = SocketDigest::from_raw_fd(fd);
    // Freshly made cells cannot be full, so these `set`s cannot fail.
    let _ = digest.peer_addr.set(Some(addresses.client.into()));
    let _ = digest.local_addr.set(Some(addresses.destination.into()));
    stream.set_socket_digest(digest);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> (Result<Option<ProxiedAddresses>, ProxyHeaderError>, Vec<u8>) {
        let mut input = bytes;
        let result = read_header(&mut input, Duration::from_secs(1)).await;
        (result, input.to_vec())
    }

    fn addresses(client: &str, destination: &str) -> Option<ProxiedAddresses> {
        Some(ProxiedAddresses {
            client: client.parse().expect("test address"),
            destination: destination.parse().expect("test address"),
        })
    }

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut header = ppp::v2::PROTOCOL_PREFIX.to_vec();
        header.push(0x20 | command);
        header.push(family);
        let length = u16::try_from(payload.len()).expect("short test payload");
        header.extend(length.to_be_bytes());
        header.extend(payload);
        header
    }

    #[tokio::test]
    async fn v1_stops_at_its_crlf() {
        let (result, rest) = parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET /").await;
        assert_eq!(
            result.expect("valid header"),
            addresses("203.0.113.7:56324", "10.0.0.1:443")
        );
        assert_eq!(rest, b"GET /");
    }

    #[tokio::test]
    async fn v1_unknown_keeps_the_socket_addresses() {
        let (result, rest) = parse(b"PROXY UNKNOWN\r\n\x16\x03").await;
        assert_eq!(result.expect("valid header"), None);
        assert_eq!(rest, b"\x16\x03");
    }

    #[tokio::test]
    async fn v2_reads_its_stated_length_including_tlvs() {
        let mut payload = vec![192, 0, 2, 1, 10, 0, 0, 1, 0xdb, 0x04, 0x01, 0xbb];
        payload.extend([0x04, 0x00, 0x01, 0x2a]); // a NOOP TLV
        let mut bytes = v2(1, 0x11, &payload);
        bytes.extend(b"\x16\x03\x01");
        let (result, rest) = parse(&bytes).await;
        assert_eq!(
            result.expect("valid header"),
            addresses("192.0.2.1:56068", "10.0.0.1:443")
        );
        assert_eq!(rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn v2_local_keeps_the_socket_addresses() {
        let (result, rest) = parse(&v2(0, 0x00, &[])).await;
        assert_eq!(result.expect("valid header"), None);
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_header() {
        let (result, _) = parse(b"").await;
        assert!(matches!(result, Err(ProxyHeaderError::Closed)));
        let (result, _) = parse(b"PROXY TCP4 ").await;
        assert!(matches!(result, Err(ProxyHeaderError::Io(_))));
        let (result, _) = parse(b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(matches!(result, Err(ProxyHeaderError::Missing)));
        let (result, _) = parse(b"PROXY TCP4 1.2.3.4\r\n").await;
        assert!(matches!(result, Err(ProxyHeaderError::V1(_))));
        let (result, _) = parse(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat()).await;
        assert!(matches!(result, Err(ProxyHeaderError::V1TooLong)));
        let mut oversized = v2(1, 0x11, &[]);
        oversized[14..16].copy_from_slice(&60000u16.to_be_bytes());
        let (result, _) = parse(&oversized).await;
        assert!(matches!(result, Err(ProxyHeaderError::V2TooLong(60000))));
        // A v2 IPv6 header too short for its two addresses.
        let (result, _) = parse(&v2(1, 0x21, &[0; 12])).await;
        assert!(matches!(result, Err(ProxyHeaderError::V2(_))));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let result = read_header(&mut server, Duration::from_millis(20)).await;
        assert!(matches!(result, Err(ProxyHeaderError::Timeout(_))));
    }
}
