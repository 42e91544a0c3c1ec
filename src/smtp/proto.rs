//! SMTP command parsing (RFC 5321 §4.1), sans I/O: a line in, a command out.

/// ESMTP parameters of MAIL/RCPT: upper-cased keyword and optional value.
pub type Params = Vec<(String, Option<String>)>;

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// LMTP's greeting (RFC 2033 §4.1).
    Lhlo(String),
    /// Reverse path ("" for the null sender) and ESMTP parameters.
    Mail {
        from: String,
        params: Vec<(String, Option<String>)>,
    },
    Rcpt {
        to: String,
        params: Vec<(String, Option<String>)>,
    },
    Data,
    /// RFC 3030 §2: a chunk of `size` octets follows the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy(String),
    Expn(String),
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// Why a line is not a valid command; each maps to a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// 500 5.5.1 / 500 5.5.2
    Unknown,
    /// 501 5.5.4 with a reason
    Syntax(&'static str),
    /// 501 5.1.7 / 5.1.3
    BadAddress(&'static str),
}

impl ParseError {
    pub fn reply(&self) -> String {
        match self {
            ParseError::Unknown => "500 5.5.1 Command not recognised".into(),
            ParseError::Syntax(why) => format!("501 5.5.4 Syntax error: {why}"),
            ParseError::BadAddress(why) => format!("501 5.1.3 Bad address syntax: {why}"),
        }
    }
}

/// Parses one command line (without its CRLF).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not UTF-8"))?;
    if line.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(ParseError::Syntax("control characters in command"));
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let arg = rest.trim();
    match verb.as_str() {
        "EHLO" | "HELO" | "LHLO" => {
            if arg.is_empty() || arg.contains(' ') {
                return Err(ParseError::Syntax(
                    "EHLO/HELO needs one domain or address literal",
                ));
            }
            Ok(match verb.as_str() {
                "EHLO" => Command::Ehlo(arg.to_string()),
                "LHLO" => Command::Lhlo(arg.to_string()),
                _ => Command::Helo(arg.to_string()),
            })
        }
        "BDAT" => {
            let mut it = arg.split(' ').filter(|s| !s.is_empty());
            let size = it
                .next()
                .filter(|n| n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
            let last = match it.next() {
                None => false,
                Some(l) if l.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(ParseError::Syntax("expected BDAT size [LAST]")),
            };
            if it.next().is_some() {
                return Err(ParseError::Syntax("expected BDAT size [LAST]"));
            }
            Ok(Command::Bdat { size, last })
        }
        "MAIL" => {
            let rest = strip_keyword(rest, "FROM:")
                .ok_or(ParseError::Syntax("expected MAIL FROM:<address>"))?;
            let (from, params) = parse_path(rest, true)?;
            Ok(Command::Mail { from, params })
        }
        "RCPT" => {
            let rest = strip_keyword(rest, "TO:")
                .ok_or(ParseError::Syntax("expected RCPT TO:<address>"))?;
            let (to, params) = parse_path(rest, false)?;
            Ok(Command::Rcpt { to, params })
        }
        "DATA" => no_arg(arg, Command::Data),
        "RSET" => no_arg(arg, Command::Rset),
        "QUIT" => no_arg(arg, Command::Quit),
        "STARTTLS" => no_arg(arg, Command::StartTls),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => Ok(Command::Vrfy(arg.to_string())),
        "EXPN" => Ok(Command::Expn(arg.to_string())),
        "AUTH" => {
            let mut it = arg.split(' ').filter(|s| !s.is_empty());
            let mechanism = it
                .next()
                .ok_or(ParseError::Syntax("AUTH needs a mechanism"))?
                .to_ascii_uppercase();
            let initial = it.next().map(String::from);
            if it.next().is_some() {
                return Err(ParseError::Syntax("too many AUTH arguments"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(ParseError::Unknown),
    }
}

fn no_arg(arg: &str, c: Command) -> Result<Command, ParseError> {
    if arg.is_empty() {
        Ok(c)
    } else {
        Err(ParseError::Syntax("this command takes no argument"))
    }
}

fn strip_keyword<'a>(s: &'a str, kw: &str) -> Option<&'a str> {
    let s = s.trim_start();
    // Compare bytes: the keyword is ASCII, so a match ends on a char
    // boundary (found by fuzzing: "MAIL FMRO¦E").
    if s.len() >= kw.len() && s.as_bytes()[..kw.len()].eq_ignore_ascii_case(kw.as_bytes()) {
        // Tolerate a space after the colon, as many clients send it.
        Some(s[kw.len()..].trim_start())
    } else {
        None
    }
}

/// Parses `<path> [SP params]` (RFC 5321 §4.1.2).
fn parse_path(s: &str, allow_null: bool) -> Result<(String, Params), ParseError> {
    let s = s.trim_end();
    if !s.starts_with('<') {
        return Err(ParseError::BadAddress(
            "the address must be in angle brackets",
        ));
    }
    let close = s.find('>').ok_or(ParseError::BadAddress("missing `>`"))?;
    let inner = &s[1..close];
    let rest = &s[close + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(ParseError::Syntax("expected a space after the address"));
    }
    // A source route (@a,@b:user@host) is accepted and ignored (§4.1.2, C.).
    let addr = match inner.find(':') {
        Some(i) if inner.starts_with('@') => &inner[i + 1..],
        _ => inner,
    };
    if !allow_null && addr.eq_ignore_ascii_case("postmaster") {
        // RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> has no domain.
    } else if addr.is_empty() {
        if !allow_null {
            return Err(ParseError::BadAddress("an empty recipient"));
        }
    } else {
        validate_mailbox(addr)?;
    }
    let mut params = Vec::new();
    for p in rest.split(' ').filter(|p| !p.is_empty()) {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (p, None),
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ParseError::Syntax("bad ESMTP parameter"));
        }
        params.push((k.to_ascii_uppercase(), v));
    }
    Ok((addr.to_string(), params))
}

/// A local part that needs no quotes (RFC 5321 §4.1.2 Dot-string):
/// dot-separated runs of atext (no specials, spaces or controls).
fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c.is_ascii_control() || " ()<>[]\\,;:\"@".contains(c))
}

/// Checks `local@domain` (§4.1.2 Mailbox), with quoted local parts and
/// address literals allowed.
fn validate_mailbox(addr: &str) -> Result<(), ParseError> {
    if addr.len() > 320 {
        return Err(ParseError::BadAddress("address too long"));
    }
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or(ParseError::BadAddress("missing `@`"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(ParseError::BadAddress("bad local part length"));
    }
    if local.starts_with('"') {
        if !(local.len() >= 2 && local.ends_with('"')) {
            return Err(ParseError::BadAddress("unterminated quoted local part"));
        }
    } else if !is_dot_string(local) {
        return Err(ParseError::BadAddress("invalid local part"));
    }
    if domain.starts_with('[') {
        if !domain.ends_with(']') {
            return Err(ParseError::BadAddress("bad address literal"));
        }
        return Ok(());
    }
    let ok = !domain.is_empty()
        && domain.len() <= 255
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(ParseError::BadAddress("invalid domain"))
    }
}

/// An address as a path in MAIL FROM / RCPT TO (RFC 5321 §4.1.2): a
/// local part that is no dot-string is sent as a quoted string, with
/// `"` and `\\` escaped; one already quoted, or a dot-string, as it is.
/// (Sieve hands over `"S[r]us"@example.net` as `S[r]us@example.net`.)
pub fn wire_mailbox(addr: &str) -> String {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return addr.to_string();
    };
    if is_dot_string(local) || (local.len() >= 2 && local.starts_with('"') && local.ends_with('"'))
    {
        return addr.to_string();
    }
    let escaped: String = local
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"@{domain}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_parts_that_need_it_are_quoted() {
        assert_eq!(wire_mailbox("a.b+c@x.test"), "a.b+c@x.test");
        assert_eq!(wire_mailbox("S[r]us@x.test"), "\"S[r]us\"@x.test");
        assert_eq!(wire_mailbox("\"S[r]us\"@x.test"), "\"S[r]us\"@x.test");
        assert_eq!(wire_mailbox("a b\"c@x.test"), "\"a b\\\"c\"@x.test");
        assert_eq!(wire_mailbox("a..b@x.test"), "\"a..b\"@x.test");
        assert_eq!(wire_mailbox("jörg@x.test"), "jörg@x.test");
        for a in ["S[r]us@x.test", "a b\"c@x.test", "a..b@x.test"] {
            assert!(validate_mailbox(&wire_mailbox(a)).is_ok(), "{a}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_commands() {
        assert_eq!(
            parse_command(b"EHLO client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(parse_command(b"helo x"), Ok(Command::Helo("x".into())));
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.c> SIZE=100 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "a@b.c".into(),
                params: vec![
                    ("SIZE".into(), Some("100".into())),
                    ("BODY".into(), Some("8BITMIME".into()))
                ]
            })
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<>"),
            Ok(Command::Mail {
                from: "".into(),
                params: vec![]
            })
        );
        assert_eq!(
            parse_command(b"rcpt to:<@r1,@r2:joe@x.org>"),
            Ok(Command::Rcpt {
                to: "joe@x.org".into(),
                params: vec![]
            })
        );
        assert_eq!(parse_command(b"DATA"), Ok(Command::Data));
        assert_eq!(
            parse_command(b"BDAT 100 LAST"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            parse_command(b"bdat 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(parse_command(b"BDAT").is_err());
        assert!(parse_command(b"BDAT -1").is_err());
        assert!(parse_command(b"BDAT 1 FIRST").is_err());
        assert!(parse_command(b"BDAT 99999999999999999999999").is_err());
        assert_eq!(parse_command(b"LHLO x"), Ok(Command::Lhlo("x".into())));
        assert_eq!(parse_command(b"NOOP anything"), Ok(Command::Noop));
        assert_eq!(
            parse_command(b"AUTH plain AGpvZQBwdw=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGpvZQBwdw==".into())
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse_command(b"FOO"), Err(ParseError::Unknown));
        assert!(matches!(
            parse_command(b"MAIL FROM:a@b.c"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse_command(b"RCPT TO:<>"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse_command(b"RCPT TO:<a@@b>"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse_command(b"DATA now"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse_command(b"EHLO"), Err(ParseError::Syntax(_))));
        assert!(parse_command(b"MAIL FROM:<a@b.c> SI ZE").is_ok());
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b.c> =x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command(b"\xff\xfe"),
            Err(ParseError::Syntax(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_command(&line);
        }

        #[test]
        fn mail_from_round_trips(local in "[a-z0-9]{1,20}", domain in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let line = format!("MAIL FROM:<{local}@{domain}>");
            let parsed = parse_command(line.as_bytes());
            prop_assert_eq!(parsed, Ok(Command::Mail { from: format!("{local}@{domain}"), params: vec![] }));
        }
    }
}

/// A server reply as the outbound client reads it (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Text lines without code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
    /// The reply as one line, for logs, queue records and DSNs.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
    /// Whether an EHLO reply lists `keyword` (case-insensitive).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split(' ')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

/// Parses one complete (possibly multi-line) reply from the start of
/// `buf`; `Ok(None)` when more bytes are needed, else the reply and the
/// bytes it used. `max` bounds the reply size.
pub fn parse_reply(buf: &[u8], max: usize) -> Result<Option<(Reply, usize)>, &'static str> {
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > max {
                return Err("reply too long");
            }
            return Ok(None);
        };
        let mut line = &buf[pos..pos + nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        pos += nl + 1;
        if pos > max {
            return Err("reply too long");
        }
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err("reply without a three-digit code");
        }
        let c =
            (line[0] - b'0') as u16 * 100 + (line[1] - b'0') as u16 * 10 + (line[2] - b'0') as u16;
        if !(200..600).contains(&c) {
            return Err("reply code out of range");
        }
        if *code.get_or_insert(c) != c {
            return Err("reply lines with different codes");
        }
        let sep = line.get(3).copied();
        let text = if line.len() > 4 { &line[4..] } else { &[][..] };
        lines.push(String::from_utf8_lossy(text).into_owned());
        match sep {
            Some(b'-') => continue,
            None | Some(b' ') => return Ok(Some((Reply { code: c, lines }, pos))),
            _ => return Err("bad separator after the reply code"),
        }
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any reply we could be sent parses back to itself, whole.
        #[test]
        fn replies_round_trip(code in 200u16..600, lines in proptest::collection::vec("[ -~]{0,40}", 1..6)) {
            let mut wire = String::new();
            for (i, l) in lines.iter().enumerate() {
                let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                wire.push_str(&format!("{code}{sep}{l}\r\n"));
            }
            wire.push_str("tail");
            let (r, used) = parse_reply(wire.as_bytes(), 1 << 16).unwrap().unwrap();
            prop_assert_eq!(r.code, code);
            prop_assert_eq!(&r.lines, &lines);
            prop_assert_eq!(&wire[used..], "tail");
        }

        /// Arbitrary bytes never panic and never claim more than they have.
        #[test]
        fn reply_parser_is_total(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, used))) = parse_reply(&data, 1 << 16) {
                prop_assert!(used <= data.len());
            }
        }
    }

    #[test]
    fn multi_line() {
        let b = b"250-mx.example Hello\r\n250-SIZE 1000\r\n250 STARTTLS\r\nrest";
        let (r, n) = parse_reply(b, 4096).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(&b[n..], b"rest");
        assert!(r.has_keyword("starttls") && r.has_keyword("SIZE") && !r.has_keyword("mx.example"));
        assert_eq!(parse_reply(b"250-a\r\n250 b", 4096), Ok(None));
        assert!(parse_reply(b"250-a\r\n251 b\r\n", 4096).is_err());
        assert!(parse_reply(b"hello\r\n", 4096).is_err());
        assert!(parse_reply(b"999 x\r\n", 4096).is_err());
        assert!(parse_reply(&[b'2'; 100], 50).is_err());
        let (r, _) = parse_reply(b"354\r\n", 10).unwrap().unwrap();
        assert_eq!(r.lines, vec![String::new()]);
    }
}
