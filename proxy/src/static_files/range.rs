//! The `Range` request header (RFC 9110 §14.2) for one file of known size.
//!
//! Only a single byte range is honoured. A request for several ranges is answered with the whole
//! file (200), which RFC 9110 allows ("a server MAY ignore the Range header field") and which
//! spares us `multipart/byteranges`; browsers and download managers ask for one range.

/// Bytes `start..=end` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    /// The `Content-Range` value of a 206.
    pub fn content_range(self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.end)
    }
}

/// What to answer a `Range` header with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole file (200). Covers an absent header, another unit, a
    /// malformed value (RFC 9110: ignored) and several ranges.
    Full,
    /// Serve this part (206).
    Partial(ByteRange),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Reads a `Range` value against a file of `size` bytes.
pub fn parse(header: &str, size: u64) -> RangeRequest {
    let Some((unit, set)) = header.split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let mut specs = set
        .split(',')
        .map(str::trim)
        .filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeRequest::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // `-n`: the last n bytes.
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(ByteRange {
                    start: size.saturating_sub(suffix),
                    end: size - 1,
                })
            }
        }
        // `a-`: from a to the end.
        (Some(start), None) if last.is_empty() => within(start, u64::MAX, size),
        // `a-b`: an end before the start is invalid syntax, hence ignored.
        (Some(start), Some(end)) if start <= end => within(start, end, size),
        _ => RangeRequest::Full,
    }
}

/// A range starting inside the file is clipped to it; one starting past the end cannot be served.
fn within(start: u64, end: u64, size: u64) -> RangeRequest {
    if start >= size {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(ByteRange {
            start,
            end: end.min(size - 1),
        })
    }
}

/// Digits only: `u64::from_str` would also take a `+` sign.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start, end })
    }

    #[test]
    fn parse_reads_single_byte_ranges() {
        use RangeRequest::{Full, Unsatisfiable};
        let cases = [
            ("bytes=0-99", 1000, partial(0, 99)),
            ("bytes=100-", 1000, partial(100, 999)),
            ("bytes=-100", 1000, partial(900, 999)),
            ("bytes=-5000", 1000, partial(0, 999)),
            ("bytes=900-5000", 1000, partial(900, 999)),
            ("bytes=999-999", 1000, partial(999, 999)),
            ("Bytes = 10 - 20 ", 1000, partial(10, 20)),
            ("bytes=0-0", 1, partial(0, 0)),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-2000", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=20-10", 1000, Full),
            ("bytes=0-99,200-299", 1000, Full),
            ("bytes=0-99, ", 1000, partial(0, 99)),
            ("bytes=", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=a-b", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes=1-+2", 1000, Full),
            ("items=0-1", 1000, Full),
            ("0-99", 1000, Full),
            ("bytes=18446744073709551616-", 1000, Full),
        ];
        for (header, size, expected) in cases {
            assert_eq!(parse(header, size), expected, "{header} of {size}");
        }
    }

    #[test]
    fn content_range_and_length() {
        let range = ByteRange { start: 10, end: 19 };
        assert_eq!(range.len(), 10);
        assert_eq!(range.content_range(300), "bytes 10-19/300");
    }
}
