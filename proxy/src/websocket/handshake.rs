//! The upstream side of an upgrade: a connection of its own to the peer, the request head, and
//! the peer's answer — the 101 that opens the tunnel, or a refusal read whole (bounded) so that
//! it can be passed on with a `Content-Length`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most header lines a peer's answer may have.
const MAX_RESPONSE_HEADERS: usize = 128;

/// Why the peer's side of an upgrade failed; `status` is what the client is told.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("connecting to {peer} failed: {source}")]
    Connect {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {peer} took longer than {after:?}")]
    ConnectTimeout { peer: SocketAddr, after: Duration },
    #[error("the peer took longer than {0:?} to take or answer the upgrade request")]
    Timeout(Duration),
    #[error("the peer closed the connection before it answered")]
    Closed,
    #[error("the peer's answer is not valid HTTP/1.1: {0}")]
    Malformed(String),
    #[error("the peer's answer passed {0} bytes")]
    TooLarge(usize),
    #[error("talking to the peer failed: {0}")]
    Io(#[from] std::io::Error),
}

impl HandshakeError {
    /// 504 when the peer was too slow, else 502.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::ConnectTimeout { .. } | HandshakeError::Timeout(_) => 504,
            _ => 502,
        }
    }
}

/// Limits of one handshake, from the pool's configuration.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    /// The largest response head, and the largest refusal body, read from the peer.
    pub max_bytes: usize,
}

/// Opens a connection to `peer`.
pub async fn connect(
    peer: SocketAddr,
    limits: &HandshakeLimits,
) -> Result<TcpStream, HandshakeError> {
    let after = limits.connect_timeout;
    let stream = tokio::time::timeout(after, TcpStream::connect(peer))
        .await
        .map_err(|_| HandshakeError::ConnectTimeout { peer, after })?
        .map_err(|source| HandshakeError::Connect { peer, source })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends the request head and reads the answer's head; the bytes that followed it (the first
/// frames of a tunnel, or the start of a refusal's body) come back with it.
pub async fn exchange(
    upstream: &mut TcpStream,
    request: &RequestHeader,
    limits: &HandshakeLimits,
) -> Result<(ResponseHeader, BytesMut), HandshakeError> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(request.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(request.raw_path());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    request.header_to_h1_wire(&mut head);
    head.extend_from_slice(b"\r\n");
    with_timeout(limits.write_timeout, upstream.write_all(&head)).await?;

    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        if let Some((response, length)) = parse_response(&buffer)? {
            buffer.advance(length);
            return Ok((response, buffer));
        }
        if buffer.len() >= limits.max_bytes {
            return Err(HandshakeError::TooLarge(limits.max_bytes));
        }
        let read = with_timeout(limits.read_timeout, upstream.read_buf(&mut buffer)).await?;
        if read == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

/// The whole body of a refusal (an answer other than 101), framed as its head says.
pub async fn refusal_body(
    upstream: &mut TcpStream,
    response: &ResponseHeader,
    mut buffer: BytesMut,
    limits: &HandshakeLimits,
) -> Result<Bytes, HandshakeError> {
    let status = response.status.as_u16();
    if status < 200 || status == 204 || status == 304 {
        return Ok(Bytes::new());
    }
    let headers = &response.headers;
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<usize>().ok());
    let mut read_more = async |buffer: &mut BytesMut| -> Result<(), HandshakeError> {
        if buffer.len() > limits.max_bytes {
            return Err(HandshakeError::TooLarge(limits.max_bytes));
        }
        match with_timeout(limits.read_timeout, upstream.read_buf(buffer)).await? {
            0 => Err(HandshakeError::Closed),
            _ => Ok(()),
        }
    };
    if chunked {
        let mut body = BytesMut::new();
        loop {
            match httparse::parse_chunk_size(&buffer) {
                Ok(httparse::Status::Complete((start, 0))) => {
                    buffer.advance(start);
                    return Ok(body.freeze());
                }
                Ok(httparse::Status::Complete((start, size))) => {
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    if body.len().saturating_add(size) > limits.max_bytes {
                        return Err(HandshakeError::TooLarge(limits.max_bytes));
                    }
                    // The chunk and the CRLF after it.
                    while buffer.len() < start + size + 2 {
                        read_more(&mut buffer).await?;
                    }
                    body.extend_from_slice(&buffer[start..start + size]);
                    buffer.advance(start + size + 2);
                }
                Ok(httparse::Status::Partial) => read_more(&mut buffer).await?,
                Err(_) => {
                    return Err(HandshakeError::Malformed("a bad chunk size".to_string()));
                }
            }
        }
    }
    match length {
        Some(length) if length > limits.max_bytes => {
            Err(HandshakeError::TooLarge(limits.max_bytes))
        }
        Some(length) => {
            while buffer.len() < length {
                read_more(&mut buffer).await?;
            }
            buffer.truncate(length);
            Ok(buffer.freeze())
        }
        // Neither framing: the body runs to the end of the connection.
        None => loop {
            match read_more(&mut buffer).await {
                Ok(()) => {}
                Err(HandshakeError::Closed) => return Ok(buffer.freeze()),
                Err(err) => return Err(err),
            }
        },
    }
}

fn parse_response(buffer: &[u8]) -> Result<Option<(ResponseHeader, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let length = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(HandshakeError::Malformed(err.to_string())),
    };
    let malformed = |what: &str| HandshakeError::Malformed(what.to_string());
    let code = parsed.code.ok_or_else(|| malformed("no status code"))?;
    let mut response = ResponseHeader::build(code, Some(parsed.headers.len()))
        .map_err(|_| malformed("an invalid status code"))?;
    response.set_version(http::Version::HTTP_11);
    for header in parsed.headers.iter() {
        response
            .append_header(header.name.to_string(), header.value)
            .map_err(|_| malformed("an invalid header"))?;
    }
    Ok(Some((response, length)))
}

async fn with_timeout<T>(
    limit: Duration,
    operation: impl Future<Output = std::io::Result<T>>,
) -> Result<T, HandshakeError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(HandshakeError::Timeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_is_parsed_with_what_follows() {
        let bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n\x81\x05hello";
        let (response, length) = parse_response(bytes).expect("valid").expect("complete");
        assert_eq!(response.status.as_u16(), 101);
        assert_eq!(
            response
                .headers
                .get("sec-websocket-protocol")
                .map(|v| v.as_bytes()),
            Some(&b"ocpp1.6"[..])
        );
        assert_eq!(&bytes[length..], b"\x81\x05hello");
        assert!(
            parse_response(b"HTTP/1.1 101 Swi")
                .expect("valid")
                .is_none()
        );
        assert!(matches!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HandshakeError::Malformed(_))
        ));
    }
}
