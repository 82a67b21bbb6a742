//! Where the next event ends, found as its bytes arrive: every byte is looked at once however
//! the event is split across reads, so a large event trickling in costs no more than one that
//! arrives whole, and the event is parsed once, complete.

use crate::msgpack::Error;

/// The scan of one event, resumed as more bytes arrive.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Where the next element starts, from the event's first byte.
    pos: usize,
    /// Elements still to come in each open array or map, innermost last.
    open: Vec<u64>,
    /// The first element (the event's array) has begun.
    begun: bool,
}

/// Open containers allowed: more than any value the parser takes, so the parser's own
/// depth limit is what refuses a deeply nested value.
const MAX_OPEN: usize = 128;

impl Scan {
    /// The event's length once `buf` (the event's bytes so far, from its first) holds all of
    /// it; `Ok(None)` while it does not.
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        loop {
            if self.begun && self.open.is_empty() {
                return Ok(Some(self.pos));
            }
            let Some((len, items)) = element(&buf[self.pos.min(buf.len())..])? else {
                return Ok(None);
            };
            if self.pos + len > buf.len() {
                return Ok(None);
            }
            self.pos += len;
            self.begun = true;
            // This element fills a place in its container.
            if let Some(top) = self.open.last_mut() {
                *top -= 1;
            }
            if items > 0 {
                if self.open.len() >= MAX_OPEN {
                    return Err(Error::malformed("values nested too deeply"));
                }
                self.open.push(items);
            }
            while self.open.last() == Some(&0) {
                self.open.pop();
            }
        }
    }
}

/// The next element's length on the wire (header and payload, not its items) and how many
/// items it opens (2 per map entry); `None` when its header is not all here.
fn element(b: &[u8]) -> Result<Option<(usize, u64)>, Error> {
    let Some(&lead) = b.first() else {
        return Ok(None);
    };
    let be = |n: usize| -> Option<u64> {
        b.get(1..1 + n)
            .map(|s| s.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x)))
    };
    let sized = |header: usize, n: usize| be(n).map(|len| (header + len as usize, 0));
    Ok(match lead {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some((1, 0)),
        0x80..=0x8f => Some((1, 2 * u64::from(lead & 0x0f))),
        0x90..=0x9f => Some((1, u64::from(lead & 0x0f))),
        0xa0..=0xbf => Some((1 + usize::from(lead & 0x1f), 0)),
        0xcc | 0xd0 => Some((2, 0)),
        0xcd | 0xd1 => Some((3, 0)),
        0xca | 0xce | 0xd2 => Some((5, 0)),
        0xcb | 0xcf | 0xd3 => Some((9, 0)),
        0xd9 | 0xc4 => sized(2, 1),
        0xda | 0xc5 => sized(3, 2),
        0xdb | 0xc6 => sized(5, 4),
        0xdc => be(2).map(|n| (3, n)),
        0xdd => be(4).map(|n| (5, n)),
        0xde => be(2).map(|n| (3, 2 * n)),
        0xdf => be(4).map(|n| (5, 2 * n)),
        0xd4..=0xd8 => Some((2 + (1usize << (lead - 0xd4)), 0)),
        0xc7 => sized(3, 1),
        0xc8 => sized(4, 2),
        0xc9 => sized(6, 4),
        _ => return Err(Error::malformed("0xc1 is not a MessagePack type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_found_whole_however_it_arrives() {
        // ["t", 1, {"a": [1, "bc"]}] then the start of the next event.
        let event = [
            0x93, 0xa1, b't', 0x01, 0x81, 0xa1, b'a', 0x92, 0x01, 0xa2, b'b', b'c',
        ];
        let mut stream = event.to_vec();
        stream.extend([0x93, 0xa1]);
        for split in 0..=event.len() {
            let mut scan = Scan::default();
            let first = scan.advance(&stream[..split]).expect("valid");
            if split < event.len() {
                assert_eq!(first, None, "split at {split}");
                assert_eq!(scan.advance(&stream).expect("valid"), Some(event.len()));
            } else {
                assert_eq!(first, Some(event.len()));
            }
        }
    }

    #[test]
    fn large_payloads_are_skipped_not_read() {
        let mut event = vec![0x92, 0xa1, b't', 0xc6, 0, 1, 0, 0];
        let mut scan = Scan::default();
        assert_eq!(scan.advance(&event).expect("valid"), None);
        event.resize(8 + 65_536, 0);
        assert_eq!(scan.advance(&event).expect("valid"), Some(event.len()));
        assert!(Scan::default().advance(&[0x91, 0xc1]).is_err());
    }
}
