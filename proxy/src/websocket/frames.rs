//! Where a WebSocket byte stream is within its frames, so that a close frame can be put
//! between two frames and never inside one.

/// A server-to-client close frame: FIN + opcode 8, unmasked, 2-byte payload 1001 (going away).
pub const GOING_AWAY_TO_CLIENT: [u8; 4] = [0x88, 0x02, 0x03, 0xE9];

/// A client-to-server close frame with payload 1001. Client frames must be masked; the key is
/// zero, which RFC 6455 allows a proxy that does not need to hide anything from middleboxes.
pub const GOING_AWAY_TO_SERVER: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE9];

const OPCODE_CLOSE: u8 = 0x8;

/// Follows one direction of a WebSocket connection frame by frame.
#[derive(Debug, Default)]
pub struct FrameTracker {
    /// Bytes of a frame header received so far (at most 14).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// The opcode of the latest frame begun.
    opcode: Option<u8>,
}

impl FrameTracker {
    /// True between frames: a close frame sent now would not cut one.
    pub fn at_boundary(&self) -> bool {
        self.header.is_empty() && self.remaining == 0
    }

    /// True once a whole close frame has passed.
    pub fn closed(&self) -> bool {
        self.opcode == Some(OPCODE_CLOSE) && self.at_boundary()
    }

    /// Accounts for bytes passed on in this direction.
    pub fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                bytes = &bytes[skip..];
                self.remaining -= skip as u64;
                continue;
            }
            if self.header.is_empty() {
                self.opcode = Some(bytes[0] & 0x0F);
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some(payload) = payload_length(&self.header) {
                self.remaining = payload;
                self.header.clear();
            }
        }
    }
}

/// The payload length once `header` holds a whole frame header (mask key included), else `None`.
fn payload_length(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let mask_bytes = if masked { 4 } else { 0 };
    let (length, length_bytes) = match header[1] & 0x7F {
        126 => (None, 2),
        127 => (None, 8),
        short => (Some(u64::from(short)), 0),
    };
    let needed = 2 + length_bytes + mask_bytes;
    if header.len() < needed {
        return None;
    }
    Some(length.unwrap_or_else(|| {
        header[2..2 + length_bytes]
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: usize) -> Vec<u8> {
        let mut frame = vec![0x81];
        match payload {
            0..=125 => frame.push(payload as u8),
            126..=65535 => {
                frame.push(126);
                frame.extend_from_slice(&(payload as u16).to_be_bytes());
            }
            _ => {
                frame.push(127);
                frame.extend_from_slice(&(payload as u64).to_be_bytes());
            }
        }
        frame.extend(std::iter::repeat_n(b'x', payload));
        frame
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        for size in [0, 5, 125, 126, 300, 70_000] {
            let bytes = frame(size);
            for cut in 1..bytes.len().min(20) {
                let mut tracker = FrameTracker::default();
                tracker.advance(&bytes[..cut]);
                assert!(!tracker.at_boundary(), "inside the frame ({size}, {cut})");
                tracker.advance(&bytes[cut..]);
                assert!(tracker.at_boundary(), "after the frame ({size}, {cut})");
            }
        }
    }

    #[test]
    fn several_frames_in_one_chunk_end_on_a_boundary() {
        let mut tracker = FrameTracker::default();
        tracker.advance(&[frame(10), frame(200), frame(0)].concat());
        assert!(tracker.at_boundary());
        tracker.advance(&frame(70_000)[..100]);
        assert!(!tracker.at_boundary());
    }

    #[test]
    fn masked_frames_count_their_key() {
        let mut masked = vec![0x82, 0x80 | 3, 1, 2, 3, 4];
        masked.extend_from_slice(b"abc");
        let mut tracker = FrameTracker::default();
        tracker.advance(&masked[..6]);
        assert!(!tracker.at_boundary(), "the payload is still to come");
        tracker.advance(&masked[6..]);
        assert!(tracker.at_boundary());
        assert!(!tracker.closed());
        let mut close = FrameTracker::default();
        close.advance(&GOING_AWAY_TO_SERVER[..3]);
        assert!(!close.closed(), "half a close frame");
        close.advance(&GOING_AWAY_TO_SERVER[3..]);
        assert!(close.closed(), "our own close frame is one whole frame");
    }
}
