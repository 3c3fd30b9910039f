//! Compression of a response body as it streams: which coding the client gets
//! ([`negotiate`]) and an [`Encoder`] that turns each chunk read from disk into compressed bytes.
//!
//! Pingora's `ResponseCompression` module would do this, but its brotli encoder in 0.9.1 only
//! flushes at the end of the body and never finishes the stream (cloudflare/pingora#1013):
//! every `br` body lacks the final meta-block and strict decoders (the brotli CLI, Node's
//! `fetch`) reject it. It also compresses with whatever coding the client lists first, where we
//! prefer brotli. So the encoders here are flate2's and brotli's, the crates Pingora links
//! anyway, driven one chunk at a time.

use std::io::Write;

use bytes::Bytes;
use http::HeaderValue;

/// A content coding we compress with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` value.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// Levels for compressing on every request: brotli 4 is about as fast as gzip 6 and still
/// smaller; the top levels cost many times the CPU for a few percent.
const BROTLI_QUALITY: u32 = 4;
const GZIP_LEVEL: u32 = 6;
/// Brotli's window (2^19 bytes), and its input buffer.
const BROTLI_WINDOW: u32 = 19;
const BROTLI_BUFFER: usize = 4096;

/// A streaming compressor writing into a buffer that is drained after every chunk, so memory
/// stays at the encoder's window whatever the file's size.
pub enum Encoder {
    /// Boxed: brotli's state is kilobytes, gzip's a pointer.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let coding = match self {
            Encoder::Brotli(_) => Coding::Brotli,
            Encoder::Gzip(_) => Coding::Gzip,
        };
        f.debug_tuple("Encoder").field(&coding).finish()
    }
}

impl Encoder {
    pub fn new(coding: Coding) -> Encoder {
        match coding {
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
        }
    }

    /// Compresses `chunk`; returns what the encoder has produced so far (possibly nothing).
    pub fn encode(&mut self, chunk: &[u8]) -> std::io::Result<Bytes> {
        let output = match self {
            Encoder::Brotli(writer) => {
                writer.write_all(chunk)?;
                writer.get_mut()
            }
            Encoder::Gzip(writer) => {
                writer.write_all(chunk)?;
                writer.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(output)))
    }

    /// Ends the stream (brotli's last meta-block, gzip's trailer) and returns the rest.
    pub fn finish(self) -> std::io::Result<Bytes> {
        let rest = match self {
            Encoder::Brotli(writer) => writer.into_inner(),
            Encoder::Gzip(writer) => writer.finish()?,
        };
        Ok(Bytes::from(rest))
    }
}

/// The coding to answer an `Accept-Encoding` with: the highest q-value among br and gzip (`*`
/// covering whichever is not named), brotli on a tie; `None` for identity.
pub fn negotiate(accept_encoding: Option<&HeaderValue>) -> Option<Coding> {
    let text = accept_encoding?.to_str().ok()?;
    let (mut brotli, mut gzip, mut any) = (None, None, None);
    for item in text.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .find_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
                    .flatten()
            })
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("br") {
            brotli = Some(quality);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(quality);
        } else if coding == "*" {
            any = Some(quality);
        }
    }
    let brotli = brotli.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if brotli <= 0.0 && gzip <= 0.0 {
        None
    } else if brotli >= gzip {
        Some(Coding::Brotli)
    } else {
        Some(Coding::Gzip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_prefers_brotli_and_honours_q_values() {
        use Coding::{Brotli, Gzip};
        let cases = [
            (None, None),
            (Some(""), None),
            (Some("identity"), None),
            (Some("gzip"), Some(Gzip)),
            (Some("x-gzip"), Some(Gzip)),
            (Some("br"), Some(Brotli)),
            (Some("gzip, deflate, br"), Some(Brotli)),
            (Some("gzip, deflate, br, zstd"), Some(Brotli)),
            (Some("GZIP;Q=0.8, BR;q=0.5"), Some(Gzip)),
            (Some("br;q=0, gzip"), Some(Gzip)),
            (Some("br;q=0, gzip;q=0"), None),
            (Some("*"), Some(Brotli)),
            (Some("*;q=0"), None),
            (Some("gzip;q=1, *;q=0"), Some(Gzip)),
            (Some("br;q=0.5, gzip;q=0.5"), Some(Brotli)),
            (Some("deflate"), None),
        ];
        for (header, expected) in cases {
            let value = header.map(|text| HeaderValue::from_str(text).expect("header value"));
            assert_eq!(negotiate(value.as_ref()), expected, "{header:?}");
        }
    }

    fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let read = match coding {
            Coding::Brotli => {
                std::io::Read::read_to_end(&mut brotli::Decompressor::new(bytes, 4096), &mut out)
            }
            Coding::Gzip => {
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)
            }
        };
        read.expect("a complete stream");
        out
    }

    #[test]
    fn encoders_stream_complete_bodies() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i: u32| format!("line {i} of the site\n").into_bytes())
            .collect();
        for coding in [Coding::Brotli, Coding::Gzip] {
            let mut encoder = Encoder::new(coding);
            let mut body = Vec::new();
            for chunk in text.chunks(64 * 1024) {
                body.extend_from_slice(&encoder.encode(chunk).expect("encode"));
            }
            body.extend_from_slice(&encoder.finish().expect("finish"));
            assert!(body.len() < text.len() / 4, "{coding:?} compressed poorly");
            // A strict decoder: it fails on a stream without its end.
            assert_eq!(decode(coding, &body), text, "{coding:?}");
        }
    }
}
