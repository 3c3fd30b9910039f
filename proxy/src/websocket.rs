//! Closing proxied WebSockets cleanly when the proxy drains.
//!
//! Pingora tunnels an upgraded connection as opaque bytes and gives no hook at shutdown, so the
//! proxy follows the frames the upstream sends: when the process is draining and a chunk from
//! the upstream ends exactly on a frame boundary, a close frame (1001, "going away") is added
//! after it and nothing more from the upstream is passed on. The charger answers the close and
//! reconnects to another instance at once, instead of finding a dead socket later. Upstreams
//! that ping more often than the grace period (the OCPP service does) are always closed this way.

use bytes::{Bytes, BytesMut};

/// A server-to-client close frame: FIN + opcode 8, unmasked, 2-byte payload 1001.
const GOING_AWAY: [u8; 4] = [0x88, 0x02, 0x03, 0xE9];

/// Where the upstream's byte stream is within its frames.
#[derive(Debug, Default)]
pub struct FrameTracker {
    /// Bytes of a frame header received so far (at most 14).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    closed: bool,
}

impl FrameTracker {
    /// Passes one chunk from the upstream on its way to the client; when `draining`, ends the
    /// stream with a close frame as soon as a chunk ends on a frame boundary.
    pub fn filter(&mut self, body: &mut Option<Bytes>, draining: bool) {
        if self.closed {
            // After our close frame the client must receive nothing more.
            *body = None;
            return;
        }
        if let Some(chunk) = body.as_ref() {
            self.advance(chunk);
        }
        if draining && self.at_boundary() {
            let mut with_close = BytesMut::new();
            if let Some(chunk) = body.take() {
                with_close.extend_from_slice(&chunk);
            }
            with_close.extend_from_slice(&GOING_AWAY);
            *body = Some(with_close.freeze());
            self.closed = true;
        }
    }

    fn at_boundary(&self) -> bool {
        self.header.is_empty() && self.remaining == 0
    }

    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                bytes = &bytes[skip..];
                self.remaining -= skip as u64;
                continue;
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

    fn feed(tracker: &mut FrameTracker, bytes: &[u8], draining: bool) -> Option<Bytes> {
        let mut body = Some(Bytes::copy_from_slice(bytes));
        tracker.filter(&mut body, draining);
        body
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        for size in [0, 5, 125, 126, 300, 70_000] {
            let bytes = frame(size);
            let cuts = [1, 2, 3, bytes.len() / 2, bytes.len() - 1];
            for cut in cuts
                .into_iter()
                .filter(|cut| (1..bytes.len()).contains(cut))
            {
                let mut tracker = FrameTracker::default();
                let first = feed(&mut tracker, &bytes[..cut], true);
                assert_eq!(
                    first.as_deref(),
                    Some(&bytes[..cut]),
                    "no close mid-frame ({size}, {cut})"
                );
                let second = feed(&mut tracker, &bytes[cut..], true).expect("the rest passes");
                assert!(
                    second.ends_with(&GOING_AWAY),
                    "close after the frame ({size}, {cut})"
                );
                assert_eq!(&second[..second.len() - 4], &bytes[cut..]);
                assert_eq!(
                    feed(&mut tracker, &frame(3), true),
                    None,
                    "nothing after the close"
                );
            }
        }
    }

    #[test]
    fn nothing_changes_while_not_draining() {
        let mut tracker = FrameTracker::default();
        let bytes = [frame(10), frame(200)].concat();
        assert_eq!(
            feed(&mut tracker, &bytes, false).as_deref(),
            Some(&bytes[..])
        );
        assert!(tracker.at_boundary());
    }

    #[test]
    fn masked_frames_count_their_key() {
        let mut masked = vec![0x82, 0x80 | 3, 1, 2, 3, 4];
        masked.extend_from_slice(b"abc");
        let mut tracker = FrameTracker::default();
        let out = feed(&mut tracker, &masked, true).expect("passes");
        assert!(out.ends_with(&GOING_AWAY));
    }
}
