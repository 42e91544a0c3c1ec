//! The ManageSieve command syntax (RFC 5804 §4), with no I/O: a command
//! is a name and arguments — atoms, numbers, quoted strings and literals
//! (`{n+}` CRLF and n octets; `{n}` is read the same way, as the RFC has
//! no continuation for client literals) — ended by CRLF. [`parse`] takes
//! what has arrived and says whether a whole command is there.

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Atom(String),
    Number(u64),
    /// A quoted string or a literal, as octets.
    String(Vec<u8>),
}

impl Arg {
    pub fn text(&self) -> Option<String> {
        match self {
            Arg::String(s) => String::from_utf8(s.clone()).ok(),
            _ => None,
        }
    }
}

/// A command line: its name (upper case) and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A whole command, and the octets it took.
    Done(Command, usize),
    /// More input is needed.
    Incomplete,
    /// Not a command: why, and the octets to drop (through the end of
    /// the line, or of a literal the line announced).
    Bad(String, usize),
    /// A literal of `size` octets, more than `max_literal`, starts after
    /// `header` octets: the caller drops it (or gives up).
    TooBig { header: usize, size: u64 },
}

/// Parses the command at the start of `buf`. Lines longer than
/// `max_line` octets (outside literals) are `Bad`.
pub fn parse(buf: &[u8], max_line: usize, max_literal: u64) -> Parse {
    let mut p = Parser { buf, pos: 0 };
    let mut args = Vec::new();
    let mut name = None;
    let mut line_start = 0;
    loop {
        if p.pos - line_start > max_line {
            return p.bad("the command line is too long");
        }
        // Separating spaces.
        while p.peek() == Some(b' ') {
            p.pos += 1;
        }
        match p.peek() {
            None => return Parse::Incomplete,
            Some(b'\r') => {
                return match buf.get(p.pos + 1) {
                    None => Parse::Incomplete,
                    Some(b'\n') => match name {
                        Some(name) => Parse::Done(Command { name, args }, p.pos + 2),
                        None => Parse::Bad("an empty line is not a command".into(), p.pos + 2),
                    },
                    Some(_) => p.bad("a CR not followed by LF"),
                };
            }
            Some(b'\n') => return p.bad("a bare LF ends no line (CRLF is required)"),
            Some(b'"') => match p.quoted() {
                Ok(Some(s)) => args.push(Arg::String(s)),
                Ok(None) => return Parse::Incomplete,
                Err(e) => return p.bad(e),
            },
            Some(b'{') => {
                let Some(close) = buf[p.pos..].iter().position(|&b| b == b'}') else {
                    return if buf.len() - p.pos > 24 {
                        p.bad("an unterminated literal length")
                    } else {
                        Parse::Incomplete
                    };
                };
                let inner = &buf[p.pos + 1..p.pos + close];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                let Some(size) = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| {
                        !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|d| d.parse::<u64>().ok())
                else {
                    return p.bad("a literal length is {digits} or {digits+}");
                };
                let after = p.pos + close + 1;
                match buf.get(after..after + 2) {
                    None => return Parse::Incomplete,
                    Some(b"\r\n") => {}
                    Some(_) => {
                        p.pos = after;
                        return p.bad("a literal length ends its line");
                    }
                }
                let start = after + 2;
                if size > max_literal {
                    return Parse::TooBig {
                        header: start,
                        size,
                    };
                }
                let end = start + size as usize;
                if buf.len() < end {
                    return Parse::Incomplete;
                }
                args.push(Arg::String(buf[start..end].to_vec()));
                p.pos = end;
                line_start = end;
            }
            Some(b) if b.is_ascii_digit() => {
                let s = p.take_while(|b| b.is_ascii_digit());
                match std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()) {
                    Some(n) if name.is_some() => args.push(Arg::Number(n)),
                    _ => return p.bad("a number where none fits"),
                }
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let s = p.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                let s = String::from_utf8_lossy(s).to_ascii_uppercase();
                if name.is_none() {
                    name = Some(s);
                } else {
                    args.push(Arg::Atom(s));
                }
            }
            Some(_) => return p.bad("an unexpected character"),
        }
        if name.is_none() && !args.is_empty() {
            return p.bad("a command starts with its name");
        }
    }
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// A quoted string (RFC 5804 §4: `\"` and `\\` escapes, no CR or
    /// LF); `None` when its end has not arrived.
    fn quoted(&mut self) -> Result<Option<Vec<u8>>, &'static str> {
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        loop {
            match self.buf.get(i) {
                None => return Ok(None),
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Some(out));
                }
                Some(b'\\') => match self.buf.get(i + 1) {
                    None => return Ok(None),
                    Some(&c @ (b'"' | b'\\')) => {
                        out.push(c);
                        i += 2;
                    }
                    Some(_) => return Err("only \\\" and \\\\ are escapes in a quoted string"),
                },
                Some(b'\r' | b'\n') => return Err("a quoted string cannot hold CR or LF"),
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    /// A bad command: drop through the end of its line.
    fn bad(&self, why: impl Into<String>) -> Parse {
        let end = self.buf[self.pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| self.pos + p + 2);
        match end {
            Some(end) => Parse::Bad(why.into(), end),
            // The rest of the line has not come: drop what is here once
            // it has (the caller reads on).
            None => Parse::Incomplete,
        }
    }
}

/// A string as the server sends it: quoted when it can be, else a
/// literal.
pub fn string(s: &[u8]) -> Vec<u8> {
    if s.len() < 1024 && !s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        let mut out = vec![b'"'];
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        out
    } else {
        let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
        out.extend_from_slice(s);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(input: &[u8]) -> (Command, usize) {
        match parse(input, 8192, 1 << 20) {
            Parse::Done(c, n) => (c, n),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn commands_and_arguments() {
        let (c, n) = done(b"putscript \"my \\\"script\\\"\" {9+}\r\nkeep;\r\nx;\r\nNOOP\r\n");
        assert_eq!(c.name, "PUTSCRIPT");
        assert_eq!(
            c.args,
            [
                Arg::String(b"my \"script\"".to_vec()),
                Arg::String(b"keep;\r\nx;".to_vec())
            ]
        );
        assert_eq!(n, 43);
        let (c, _) = done(b"HAVESPACE \"a\" 1000\r\n");
        assert_eq!(c.args[1], Arg::Number(1000));
        let (c, _) = done(b"AUTHENTICATE \"PLAIN\" {4}\r\nAGE=\r\n");
        assert_eq!(c.args[1], Arg::String(b"AGE=".to_vec()));
    }

    #[test]
    fn partial_input_waits() {
        for cut in [
            &b"NOOP"[..],
            b"NOOP\r",
            b"PUTSCRIPT \"a\" {5+}\r\nke",
            b"X \"ab",
            b"X {1",
        ] {
            assert_eq!(parse(cut, 8192, 100), Parse::Incomplete, "{cut:?}");
        }
    }

    #[test]
    fn bad_input_is_dropped_to_the_line_end() {
        assert!(matches!(
            parse(b"\"x\" NOOP\r\nNOOP\r\n", 8192, 100),
            Parse::Bad(_, 10)
        ));
        assert!(matches!(
            parse(b"NOOP \"a\rb\"\r\n", 8192, 100),
            Parse::Bad(..)
        ));
        assert!(matches!(parse(b"X {abc}\r\n", 8192, 100), Parse::Bad(..)));
        assert!(matches!(parse(b"\r\n", 8192, 100), Parse::Bad(_, 2)));
        assert_eq!(
            parse(b"PUTSCRIPT \"a\" {500+}\r\n", 8192, 100),
            Parse::TooBig {
                header: 22,
                size: 500
            }
        );
        let long = format!("NOOP \"{}\"\r\n", "x".repeat(100));
        assert!(matches!(parse(long.as_bytes(), 50, 100), Parse::Bad(..)));
    }

    #[test]
    fn strings_go_out_quoted_or_literal() {
        assert_eq!(string(b"a\"b"), b"\"a\\\"b\"");
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
    }

    proptest::proptest! {
        /// Any input: no panic, and a command or a drop never claims
        /// more octets than there are.
        #[test]
        fn any_bytes(input in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            match parse(&input, 64, 64) {
                Parse::Done(_, n) | Parse::Bad(_, n) => proptest::prop_assert!(n > 0 && n <= input.len()),
                Parse::TooBig { header, .. } => proptest::prop_assert!(header <= input.len()),
                Parse::Incomplete => {}
            }
        }

        /// A script sent as a literal comes back as it was.
        #[test]
        fn literals_round_trip(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut cmd = format!("PUTSCRIPT \"s\" {{{}+}}\r\n", body.len()).into_bytes();
            cmd.extend_from_slice(&body);
            cmd.extend_from_slice(b"\r\n");
            match parse(&cmd, 8192, 1000) {
                Parse::Done(c, n) => {
                    proptest::prop_assert_eq!(n, cmd.len());
                    proptest::prop_assert_eq!(&c.args[1], &Arg::String(body));
                }
                other => proptest::prop_assert!(false, "{:?}", other),
            }
        }
    }
}
