//! IMAP command reception and tokenising, sans I/O (RFC 9051 §2.2, §4).
//!
//! [`Receiver`] turns a byte stream into complete commands, handling
//! synchronising (`{n}`) and non-synchronising (`{n+}`, RFC 7888) literals
//! and enforcing the line and literal limits before anything is allocated
//! for a literal. [`tokenize`] splits a complete command into tokens.

pub mod args;
pub mod utf7;

/// What the receiver has for the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete command (tag, name, arguments), literals included.
    Command(Vec<u8>),
    /// A synchronising literal was announced: send a continuation request.
    Continue,
    /// The command cannot be accepted; reply with this tagged (or untagged,
    /// when the tag is unknown) BAD/NO and go on with the next command.
    Reject {
        tag: Option<String>,
        response: String,
    },
    /// The connection cannot continue (e.g. an oversized non-synchronising
    /// literal whose bytes are already on their way).
    Fatal(String),
}

pub struct Receiver {
    buf: Vec<u8>,
    /// Where to continue scanning for the next line end.
    pos: usize,
    /// Literal bytes still to arrive before scanning resumes.
    literal_left: usize,
    /// Start of the current line within the command.
    line_start: usize,
    max_line: usize,
    max_literal: usize,
    /// Largest non-synchronising literal (RFC 7888: unlimited with
    /// LITERAL+, 4096 with LITERAL-).
    max_non_sync: usize,
    /// The current command carried a non-synchronising literal over
    /// `max_non_sync`: its bytes are read and the command refused.
    refuse: bool,
    /// Skipping the rest of an overlong line.
    discarding: bool,
    /// Literal bytes one command may carry in all (before login, a small
    /// limit: nobody may make the server hold much before it knows who
    /// they are).
    max_command_literals: usize,
    /// Literal bytes of the current command so far.
    command_literals: usize,
}

/// RFC 7888 §5: the LITERAL- limit.
pub const LITERAL_MINUS_MAX: usize = 4096;

impl Receiver {
    pub fn new(max_line: usize, max_literal: usize) -> Self {
        Receiver {
            buf: Vec::new(),
            pos: 0,
            literal_left: 0,
            line_start: 0,
            max_line,
            max_literal,
            max_non_sync: usize::MAX,
            refuse: false,
            discarding: false,
            max_command_literals: usize::MAX,
            command_literals: 0,
        }
    }

    /// Limits the literal bytes of one command (`usize::MAX`: only the
    /// per-literal limit applies).
    pub fn set_command_literal_limit(&mut self, n: usize) {
        self.max_command_literals = n;
    }

    /// LITERAL- instead of LITERAL+ (RFC 7888 §5).
    pub fn literal_minus(mut self) -> Self {
        self.max_non_sync = LITERAL_MINUS_MAX;
        self
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a returned command.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Removes and returns raw buffered bytes (used for AUTHENTICATE
    /// continuation lines and after STARTTLS).
    pub fn take_line(&mut self) -> Option<Vec<u8>> {
        let nl = self.buf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.reset_scan();
        Some(line)
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.reset_scan();
    }

    fn reset_scan(&mut self) {
        self.pos = 0;
        self.literal_left = 0;
        self.line_start = 0;
        self.refuse = false;
        self.command_literals = 0;
    }

    fn tag(&self) -> Option<String> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
        let t = std::str::from_utf8(&self.buf[..end]).ok()?;
        if valid_tag(t) {
            Some(t.to_string())
        } else {
            None
        }
    }

    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.discarding {
                let nl = self.buf.iter().position(|&b| b == b'\n');
                match nl {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.discarding = false;
                        self.reset_scan();
                        continue;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            if self.literal_left > 0 {
                let avail = self.buf.len() - self.pos;
                if avail < self.literal_left {
                    return None;
                }
                self.pos += self.literal_left;
                self.literal_left = 0;
                self.line_start = self.pos;
            }
            let Some(off) = self.buf[self.pos..].iter().position(|&b| b == b'\n') else {
                if self.buf.len() - self.line_start > self.max_line {
                    let tag = self.tag();
                    self.discarding = true;
                    self.buf.clear();
                    self.reset_scan();
                    return Some(Event::Reject {
                        tag,
                        response: "BAD [TOOBIG] Command line too long".into(),
                    });
                }
                return None;
            };
            let nl = self.pos + off;
            if nl - self.line_start > self.max_line {
                let tag = self.tag();
                self.buf.drain(..=nl);
                self.reset_scan();
                return Some(Event::Reject {
                    tag,
                    response: "BAD [TOOBIG] Command line too long".into(),
                });
            }
            let mut line_end = nl;
            // The CR may belong to a literal that ended right before the LF
            // (found by fuzzing): only strip it from this line's own bytes.
            if line_end > self.line_start && self.buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            match literal_announcement(&self.buf[self.line_start..line_end]) {
                Some((n, sync)) => {
                    let limit = self.max_literal.min(
                        self.max_command_literals
                            .saturating_sub(self.command_literals),
                    );
                    if n > limit {
                        let tag = self.tag();
                        if !sync {
                            // The bytes come anyway; we will not read them.
                            self.clear();
                            return Some(Event::Fatal("BYE [TOOBIG] Literal too large".into()));
                        }
                        self.buf.drain(..=nl);
                        self.reset_scan();
                        return Some(Event::Reject {
                            tag,
                            response: "NO [TOOBIG] Literal too large".into(),
                        });
                    }
                    if !sync && n > self.max_non_sync {
                        // Its bytes are on their way: read them with the
                        // rest of the command, then refuse it (§4).
                        self.refuse = true;
                    }
                    self.command_literals += n;
                    self.pos = nl + 1;
                    self.literal_left = n;
                    self.line_start = self.pos;
                    if sync && self.buf.len() - self.pos < n {
                        return Some(Event::Continue);
                    }
                }
                None => {
                    if self.refuse {
                        let tag = self.tag();
                        self.buf.drain(..=nl);
                        self.reset_scan();
                        return Some(Event::Reject {
                            tag,
                            response: format!(
                                "BAD [TOOBIG] Non-synchronizing literals over {LITERAL_MINUS_MAX} bytes are not accepted (LITERAL-)"
                            ),
                        });
                    }
                    let cmd: Vec<u8> = self.buf.drain(..=nl).collect();
                    self.reset_scan();
                    return Some(Event::Command(cmd));
                }
            }
        }
    }
}

/// `{n}` or `{n+}` at the end of a line: the literal size and whether it is
/// synchronising.
fn literal_announcement(line: &[u8]) -> Option<(usize, bool)> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|&b| b == b'{')?;
    let mut inner = &line[open + 1..line.len() - 1];
    let sync = if inner.last() == Some(&b'+') {
        inner = &inner[..inner.len() - 1];
        false
    } else {
        true
    };
    if inner.is_empty() || inner.len() > 19 || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(inner)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, sync))
}

pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\+".contains(&b))
}

/// A token of a command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Atom(String),
    Quoted(Vec<u8>),
    Literal(Vec<u8>),
    List(Vec<Token>),
}

impl Token {
    /// The value of an astring / string argument.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) => Some(a.as_bytes()),
            Token::Quoted(q) | Token::Literal(q) => Some(q),
            Token::List(_) => None,
        }
    }

    pub fn as_string(&self) -> Option<String> {
        self.as_bytes()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
    }

    /// The token as an upper-case keyword ("" when it is not a string).
    pub fn keyword(&self) -> String {
        self.as_string().unwrap_or_default().to_ascii_uppercase()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub tag: String,
    pub name: String,
    pub args: Vec<Token>,
}

const MAX_DEPTH: usize = 16;

/// Splits a complete command into tag, upper-cased name and arguments.
pub fn tokenize(cmd: &[u8]) -> Result<Parsed, (Option<String>, String)> {
    let mut p = Tokenizer { b: cmd, i: 0 };
    let tag = p.atom_raw();
    let tag = String::from_utf8(tag.to_vec()).map_err(|_| (None, "Invalid tag".to_string()))?;
    if !valid_tag(&tag) {
        return Err((None, "Invalid tag".into()));
    }
    if !p.eat(b' ') {
        return Err((Some(tag), "Missing command".into()));
    }
    let name = String::from_utf8_lossy(p.atom_raw()).to_ascii_uppercase();
    if name.is_empty() {
        return Err((Some(tag), "Missing command".into()));
    }
    let mut args = Vec::new();
    loop {
        match p.peek() {
            None => break,
            Some(b'\r') | Some(b'\n') => break,
            Some(b' ') => {
                p.i += 1;
                args.push(p.token(0).map_err(|e| (Some(tag.clone()), e))?);
            }
            Some(_) => return Err((Some(tag), "Expected a space between arguments".into())),
        }
    }
    Ok(Parsed { tag, name, args })
}

struct Tokenizer<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Tokenizer<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn atom_raw(&mut self) -> &'a [u8] {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b' '
                || c == b'('
                || c == b')'
                || c == b'\r'
                || c == b'\n'
                || c == b'"'
                || c < 0x20
            {
                break;
            }
            if c == b'[' {
                // Section specs: keep everything up to the matching ']'.
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                    self.i += 1;
                    if c == b'[' {
                        depth += 1;
                    } else if c == b']' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                continue;
            }
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn token(&mut self, depth: usize) -> Result<Token, String> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err("Too deeply nested".into());
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Token::List(items));
                        }
                        Some(b' ') => self.i += 1,
                        None | Some(b'\r') | Some(b'\n') => return Err("Unterminated list".into()),
                        Some(_) => items.push(self.token(depth + 1)?),
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(Token::Quoted(out));
                        }
                        Some(b'\\') => {
                            self.i += 1;
                            match self.peek() {
                                Some(c @ (b'"' | b'\\')) => {
                                    out.push(c);
                                    self.i += 1;
                                }
                                _ => return Err("Invalid escape in quoted string".into()),
                            }
                        }
                        Some(b'\r') | Some(b'\n') | None => {
                            return Err("Unterminated quoted string".into())
                        }
                        // RFC 9051 §9: NUL is no QUOTED-CHAR.
                        Some(0) => return Err("NUL in a quoted string".into()),
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~')
                if self.peek() == Some(b'{') || self.b.get(self.i + 1) == Some(&b'{') =>
            {
                // `~{n}` is a literal8 (RFC 3516); any other `~` is an
                // ordinary atom character (RFC 9051 §9 ATOM-CHAR), as in
                // `SELECT ~foo`.
                let literal8 = self.peek() == Some(b'~');
                if literal8 {
                    self.i += 1;
                }
                let start = self.i + 1;
                let close = self.b[start..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("Bad literal")?;
                let spec = &self.b[start..start + close];
                let spec = spec.strip_suffix(b"+").unwrap_or(spec);
                let n: usize = std::str::from_utf8(spec)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("Bad literal size")?;
                self.i = start + close + 1;
                if !self.eat(b'\r') {
                    // Tolerate a bare LF.
                }
                if !self.eat(b'\n') {
                    return Err("Literal size must end the line".into());
                }
                // checked: a size near usize::MAX must not wrap (found by
                // fuzzing: "{018446744073709551615}").
                let end = self.i.checked_add(n).ok_or("Literal size too large")?;
                let data = self
                    .b
                    .get(self.i..end)
                    .ok_or("Literal shorter than announced")?;
                // RFC 9051 §9: a literal holds CHAR8 (no NUL); binary data
                // comes in a literal8 (RFC 3516 §4.2).
                if !literal8 && data.contains(&0) {
                    return Err("NUL in a literal: send binary data in a literal8 (~{n})".into());
                }
                self.i += n;
                Ok(Token::Literal(data.to_vec()))
            }
            Some(b')') => Err("Unexpected `)`".into()),
            Some(_) => {
                let a = self.atom_raw();
                if a.is_empty() {
                    return Err("Empty argument".into());
                }
                Ok(Token::Atom(
                    String::from_utf8(a.to_vec()).map_err(|_| "Argument is not UTF-8")?,
                ))
            }
            None => Err("Missing argument".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(r: &mut Receiver) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(e) = r.next_event() {
            v.push(e);
        }
        v
    }

    #[test]
    fn simple_and_literal() {
        let mut r = Receiver::new(1000, 1000);
        r.feed(b"a1 NOOP\r\na2 LOGIN {3}\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Command(b"a1 NOOP\r\n".to_vec()), Event::Continue]
        );
        r.feed(b"joe pw\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Command(b"a2 LOGIN {3}\r\njoe pw\r\n".to_vec())]
        );
        let p = tokenize(b"a2 LOGIN {3}\r\njoe pw\r\n").unwrap();
        assert_eq!(
            p.args,
            vec![Token::Literal(b"joe".to_vec()), Token::Atom("pw".into())]
        );
    }

    #[test]
    fn literal_minus_refuses_large_non_sync_literals() {
        let mut r = Receiver::new(1000, 10_000).literal_minus();
        let big = "x".repeat(LITERAL_MINUS_MAX + 1);
        r.feed(format!("a APPEND INBOX {{{}+}}\r\n{big}\r\nb NOOP\r\n", big.len()).as_bytes());
        match r.next_event() {
            Some(Event::Reject { tag, response }) => {
                assert_eq!(tag.as_deref(), Some("a"));
                assert!(response.starts_with("BAD [TOOBIG]"), "{response}");
            }
            e => panic!("{e:?}"),
        }
        // The literal's bytes were consumed; the next command is intact.
        assert_eq!(r.next_event(), Some(Event::Command(b"b NOOP\r\n".to_vec())));
        // At the limit, and synchronising literals of any size, are fine.
        let ok = "y".repeat(LITERAL_MINUS_MAX);
        r.feed(format!("c APPEND INBOX {{{}+}}\r\n{ok}\r\n", ok.len()).as_bytes());
        assert!(matches!(r.next_event(), Some(Event::Command(_))));
        r.feed(format!("d APPEND INBOX {{{}}}\r\n", big.len()).as_bytes());
        assert_eq!(r.next_event(), Some(Event::Continue));
        r.feed(format!("{big}\r\n").as_bytes());
        assert!(matches!(r.next_event(), Some(Event::Command(_))));
    }

    #[test]
    fn non_sync_literal_needs_no_continuation() {
        let mut r = Receiver::new(1000, 1000);
        r.feed(b"a LOGIN {3+}\r\njoe {2+}\r\npw\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Command(
                b"a LOGIN {3+}\r\njoe {2+}\r\npw\r\n".to_vec()
            )]
        );
    }

    #[test]
    fn literals_of_one_command_are_limited_together() {
        let mut r = Receiver::new(1000, 1_000_000);
        r.set_command_literal_limit(10);
        r.feed(b"a LOGIN {6+}\r\nuser@x {5}\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Reject {
                tag: Some("a".into()),
                response: "NO [TOOBIG] Literal too large".into()
            }]
        );
        r.feed(b"b LOGIN {4+}\r\nuser {4}\r\n");
        assert_eq!(drain(&mut r), vec![Event::Continue]);
        r.feed(b"pass\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Command(
                b"b LOGIN {4+}\r\nuser {4}\r\npass\r\n".to_vec()
            )]
        );
        // The count starts again with each command.
        r.feed(b"c LOGIN {4+}\r\nuser {4+}\r\npass\r\n");
        assert_eq!(drain(&mut r).len(), 1);
        r.feed(b"d LOGIN {11+}\r\n");
        assert!(matches!(drain(&mut r)[0], Event::Fatal(_)));
    }

    #[test]
    fn huge_literal_refused_without_allocation() {
        let mut r = Receiver::new(1000, 1000);
        r.feed(b"a APPEND INBOX {999999999999}\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Event::Reject {
                tag: Some("a".into()),
                response: "NO [TOOBIG] Literal too large".into()
            }]
        );
        r.feed(b"b NOOP\r\n");
        assert_eq!(drain(&mut r), vec![Event::Command(b"b NOOP\r\n".to_vec())]);
        r.feed(b"c APPEND INBOX {99999+}\r\n");
        assert!(matches!(drain(&mut r)[0], Event::Fatal(_)));
    }

    #[test]
    fn nul_only_in_literal8() {
        // RFC 9051 §9: NUL is neither a QUOTED-CHAR nor a CHAR8.
        assert!(tokenize(b"a LOGIN \"j\x00e\" pw\r\n").is_err());
        assert!(tokenize(b"a APPEND INBOX {3}\r\na\x00b\r\n").is_err());
        let p = tokenize(b"a APPEND INBOX ~{3}\r\na\x00b\r\n").unwrap();
        assert_eq!(p.args[1], Token::Literal(b"a\x00b".to_vec()));
    }

    #[test]
    fn tilde_without_brace() {
        // `~` and `}` are atom characters (RFC 9051 §9); only `~{` starts
        // a literal8 (found by fuzzing: "~}" once sliced out of bounds).
        let p = tokenize(b"y SILE ( ~} x)\r\n").unwrap();
        assert_eq!(
            p.args,
            vec![Token::List(vec![
                Token::Atom("~}".into()),
                Token::Atom("x".into())
            ])]
        );
        let p = tokenize(b"a SELECT ~foo\r\n").unwrap();
        assert_eq!(p.args, vec![Token::Atom("~foo".into())]);
        let p = tokenize(b"y X ~{3}\r\nabc\r\n").unwrap();
        assert_eq!(p.args, vec![Token::Literal(b"abc".to_vec())]);
    }

    #[test]
    fn literal_ending_in_cr() {
        let mut r = Receiver::new(1000, 1000);
        r.feed(b"a1 LOGIN {0}\r\n {2+}\r\np\r\npw\r\n");
        let ev = drain(&mut r);
        assert!(matches!(ev[0], Event::Command(_)), "{ev:?}");
    }

    #[test]
    fn overlong_line() {
        let mut r = Receiver::new(10, 1000);
        r.feed(b"a NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert!(matches!(drain(&mut r)[0], Event::Reject { .. }));
        r.feed(b"yyyy\r\nb NOOP\r\n");
        assert_eq!(drain(&mut r), vec![Event::Command(b"b NOOP\r\n".to_vec())]);
    }

    #[test]
    fn sections_and_lists() {
        let p = tokenize(b"x UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n")
            .unwrap();
        assert_eq!(p.name, "UID");
        assert_eq!(p.args[0], Token::Atom("FETCH".into()));
        assert_eq!(
            p.args[2],
            Token::List(vec![
                Token::Atom("FLAGS".into()),
                Token::Atom("BODY.PEEK[HEADER.FIELDS (From To)]<0.100>".into())
            ])
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut cmd = b"a X ".to_vec();
        cmd.extend(std::iter::repeat_n(b'(', 100));
        cmd.extend(std::iter::repeat_n(b')', 100));
        cmd.extend_from_slice(b"\r\n");
        assert!(tokenize(&cmd).is_err());
    }

    proptest! {
        #[test]
        fn receiver_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut r = Receiver::new(128, 128);
            for c in chunks {
                r.feed(&c);
                while let Some(e) = r.next_event() {
                    match e {
                        Event::Command(c) => { let _ = tokenize(&c); }
                        Event::Fatal(_) => return Ok(()),
                        _ => {}
                    }
                }
            }
        }

        #[test]
        fn quoted_round_trip(s in "[ -~]{0,50}") {
            let q = crate::mail::mime::istring(&s);
            let cmd = format!("t CMD {q}\r\n");
            let p = tokenize(cmd.as_bytes()).unwrap();
            prop_assert_eq!(p.args, vec![Token::Quoted(s.into_bytes())]);
        }
    }
}
