//! The DATA receiver (RFC 5321 §4.1.1.4, §4.5.2), sans I/O: bytes in, the
//! message out once `CRLF.CRLF` is seen, with dot-stuffing removed.
//!
//! Only `CRLF . CRLF` ends the data: a bare LF or CR before or after the dot
//! does not (the "SMTP smuggling" sequences), so what another server takes
//! as two messages is one message here. Data beyond the size limit is
//! counted and dropped, so an oversized message costs no memory.

#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// Need more bytes.
    More,
    /// The message is complete; `consumed` bytes of the last input were used
    /// (the rest belongs to the next command, e.g. with PIPELINING).
    Done { consumed: usize },
}

pub struct DataReceiver {
    body: Vec<u8>,
    max: usize,
    total: usize,
    /// Bytes of the current line seen so far (to spot a leading dot).
    at_line_start: bool,
    /// Matching progress of "\r\n.\r\n" at a line start: 0 none, 1 ".", 2 ".\r".
    dot_state: u8,
    prev_cr: bool,
}

impl DataReceiver {
    pub fn new(max: usize) -> Self {
        DataReceiver {
            body: Vec::with_capacity(8192.min(max)),
            max,
            total: 0,
            at_line_start: true,
            dot_state: 0,
            prev_cr: false,
        }
    }

    /// True once more than `max` bytes arrived; the message will be refused.
    pub fn too_big(&self) -> bool {
        self.total > self.max
    }

    pub fn into_message(self) -> Vec<u8> {
        self.body
    }

    /// Bytes of the message held now (not yet taken).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Takes the message bytes received so far (to spool them); the rest
    /// follows in the body.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    fn push(&mut self, b: u8) {
        self.total += 1;
        if self.total <= self.max {
            self.body.push(b);
        }
    }

    pub fn feed(&mut self, input: &[u8]) -> DataOutcome {
        for (i, &b) in input.iter().enumerate() {
            match self.dot_state {
                1 => {
                    if b == b'\r' {
                        self.dot_state = 2;
                        continue;
                    }
                    // A stuffed dot: drop it and keep the byte (§4.5.2).
                    self.dot_state = 0;
                    self.at_line_start = false;
                }
                2 => {
                    if b == b'\n' {
                        return DataOutcome::Done { consumed: i + 1 };
                    }
                    // ".\r" followed by something else: the line was ".\r…";
                    // keep it as data (dot dropped as stuffing).
                    self.dot_state = 0;
                    self.push(b'\r');
                    self.prev_cr = true;
                    self.at_line_start = false;
                }
                _ => {}
            }
            if self.at_line_start && b == b'.' {
                self.dot_state = 1;
                continue;
            }
            self.push(b);
            self.at_line_start = b == b'\n' && self.prev_cr;
            self.prev_cr = b == b'\r';
        }
        DataOutcome::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(input: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut r = DataReceiver::new(1 << 20);
        match r.feed(input) {
            DataOutcome::Done { consumed } => Some((r.into_message(), consumed)),
            DataOutcome::More => None,
        }
    }

    #[test]
    fn bare_newlines() {
        assert!(!has_bare_newline(b"a\r\nb\r\n"));
        assert!(!has_bare_newline(b""));
        assert!(has_bare_newline(b"a\nb"));
        assert!(has_bare_newline(b"a\rb\r\n"));
        assert!(has_bare_newline(b"a\r"));
        assert!(has_bare_newline(b"\n"));
    }

    #[test]
    fn simple_and_stuffed() {
        let (m, c) = run(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n").unwrap();
        assert_eq!(m, b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(c, 24);
    }

    #[test]
    fn empty_message() {
        assert_eq!(run(b".\r\n").unwrap().0, b"");
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        assert!(run(b"a\n.\nMAIL FROM:<x@y>\r\n").is_none());
        assert!(run(b"a\r\n.\nMAIL FROM:<x@y>\r\n").is_none());
        assert!(run(b"a\n.\r\nMAIL FROM:<x@y>\r\n").is_none());
        assert!(run(b"a\r.\rMAIL\r\n").is_none());
    }

    #[test]
    fn split_across_feeds() {
        let input = b"line1\r\n..x\r\n.\r\n";
        for cut in 0..input.len() {
            let mut r = DataReceiver::new(1000);
            let first = r.feed(&input[..cut]);
            let done = if first == DataOutcome::More {
                r.feed(&input[cut..])
            } else {
                first
            };
            assert!(matches!(done, DataOutcome::Done { .. }), "cut {cut}");
            assert_eq!(r.into_message(), b"line1\r\n.x\r\n", "cut {cut}");
        }
    }

    #[test]
    fn size_limit() {
        let mut r = DataReceiver::new(5);
        assert!(matches!(
            r.feed(b"0123456789\r\n.\r\n"),
            DataOutcome::Done { .. }
        ));
        assert!(r.too_big());
        assert_eq!(r.into_message().len(), 5);
    }

    proptest! {
        /// Dot-stuffing a body and feeding it back yields the body.
        #[test]
        fn stuffing_round_trip(lines in proptest::collection::vec("[ -~]{0,40}", 0..20)) {
            let mut body = Vec::new();
            for l in &lines { body.extend_from_slice(l.as_bytes()); body.extend_from_slice(b"\r\n"); }
            let mut wire = Vec::new();
            for l in &lines {
                if l.starts_with('.') { wire.push(b'.'); }
                wire.extend_from_slice(l.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b".\r\n");
            let (m, c) = run(&wire).unwrap();
            prop_assert_eq!(m, body);
            prop_assert_eq!(c, wire.len());
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..500)) {
            let mut r = DataReceiver::new(100);
            let _ = r.feed(&input);
        }
    }
}

/// Whether `msg` has a CR not followed by LF or an LF not preceded by CR
/// (RFC 5321 §2.3.8: not allowed in SMTP data).
pub fn has_bare_newline(msg: &[u8]) -> bool {
    let mut prev_cr = false;
    for &b in msg {
        if (b == b'\n') != prev_cr {
            return true;
        }
        prev_cr = b == b'\r';
    }
    prev_cr
}

/// The BDAT receiver (RFC 3030 §2), sans I/O: chunks of announced sizes,
/// taken verbatim (no dot-stuffing, binary allowed). Bytes over the size
/// limit are counted and dropped, so the session stays in step with the
/// client without holding them.
pub struct ChunkReceiver {
    body: Vec<u8>,
    max: usize,
    total: u64,
    /// Octets of the current chunk still to come.
    remaining: u64,
}

impl ChunkReceiver {
    pub fn new(max: usize) -> Self {
        ChunkReceiver {
            body: Vec::new(),
            max,
            total: 0,
            remaining: 0,
        }
    }

    /// Starts a chunk of `size` octets.
    pub fn start_chunk(&mut self, size: u64) {
        self.remaining = size;
    }

    /// Takes what belongs to the current chunk from `input`; returns the
    /// number of bytes used. The chunk is complete when
    /// [`ChunkReceiver::chunk_done`] says so.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let n = (self.remaining.min(input.len() as u64)) as usize;
        self.remaining -= n as u64;
        self.total += n as u64;
        let kept_before = (self.total - n as u64).min(self.max as u64) as usize;
        let room = self.max.saturating_sub(kept_before);
        self.body.extend_from_slice(&input[..n.min(room)]);
        n
    }

    /// Bytes of the message held now (not yet taken).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Takes the message bytes received so far (to spool them).
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    pub fn chunk_done(&self) -> bool {
        self.remaining == 0
    }

    pub fn too_big(&self) -> bool {
        self.total > self.max as u64
    }

    pub fn into_message(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::ChunkReceiver;

    #[test]
    fn chunks_are_taken_verbatim_and_bounded() {
        let mut r = ChunkReceiver::new(10);
        r.start_chunk(4);
        assert_eq!(r.feed(b"ab\r\n.\r\nNEXT"), 4);
        assert!(r.chunk_done());
        r.start_chunk(8);
        assert_eq!(r.feed(b"123"), 3);
        assert!(!r.chunk_done());
        assert_eq!(r.feed(b"45678QUIT"), 5);
        assert!(r.chunk_done());
        assert!(r.too_big());
        assert_eq!(r.into_message(), b"ab\r\n123456");
    }
}
