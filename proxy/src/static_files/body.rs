//! Streams part of a file to the client in fixed chunks, compressed on the way when asked, so
//! memory per request stays at one chunk (and the encoder's window) whatever the file's size.

use bytes::BytesMut;
use pingora::prelude::*;
use pingora::proxy::Session;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, SeekFrom};

use super::encoding::Encoder;

/// Bytes read from disk and handed to the connection at a time.
const CHUNK: usize = 64 * 1024;

/// Sends `len` bytes of `file` from `start`, through `encoder` if there is one; the last write
/// ends the response. The header has been sent: a file that fails or shrinks now can only be
/// cut short, so the connection is closed instead of reused and the client sees the body end
/// early. Errors returned are the client's (it went away).
pub async fn send(
    session: &mut Session,
    mut file: File,
    start: u64,
    len: u64,
    mut encoder: Option<Encoder>,
) -> Result<()> {
    if let Err(err) = file.seek(SeekFrom::Start(start)).await {
        return cut_short(session, &err);
    }
    let mut remaining = len;
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(CHUNK, |left| left.min(CHUNK));
        let mut chunk = BytesMut::with_capacity(want);
        let read = match (&mut file).take(want as u64).read_buf(&mut chunk).await {
            Ok(0) => {
                let shrunk = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return cut_short(session, &shrunk);
            }
            Ok(read) => read as u64,
            Err(err) => return cut_short(session, &err),
        };
        remaining -= read;
        let data = match encoder.as_mut() {
            // Pingora skips an empty write that does not end the body.
            Some(encoder) => match encoder.encode(&chunk) {
                Ok(compressed) => compressed,
                Err(err) => return cut_short(session, &err),
            },
            None => chunk.freeze(),
        };
        let end = remaining == 0 && encoder.is_none();
        session.write_response_body(Some(data), end).await?;
    }
    if let Some(encoder) = encoder {
        match encoder.finish() {
            Ok(rest) => session.write_response_body(Some(rest), true).await?,
            Err(err) => return cut_short(session, &err),
        }
    }
    Ok(())
}

fn cut_short(session: &mut Session, err: &std::io::Error) -> Result<()> {
    tracing::warn!(error = %err, "A static file could not be sent to the end.");
    session.set_keepalive(None);
    Ok(())
}
