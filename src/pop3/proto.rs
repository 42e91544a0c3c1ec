//! POP3 wire format, sans-IO: command lines in (RFC 1939 §3, RFC 2449,
//! RFC 2595, RFC 5034), commands or errors out; replies and multi-line
//! bodies out.

/// A POP3 command with its arguments checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    Stls,
    User(String),
    Pass(String),
    /// AUTH with no mechanism lists the mechanisms (RFC 5034 §4).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Quit,
    Stat,
    /// LIST, UIDL with an optional message number.
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Dele(u32),
    Top(u32, u32),
    Noop,
    Rset,
}

impl Command {
    /// The command's keyword (a metric label).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Top(..) => "TOP",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command we know.
    Unknown,
    /// A known command with missing, extra or malformed arguments.
    Syntax(&'static str),
}

/// A message number: 1 or more, no sign, no leading "+" (RFC 1939 §3).
fn number(s: &str) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("a message number is digits"));
    }
    match s.parse::<u32>() {
        Ok(0) | Err(_) => Err(ParseError::Syntax("no such message number")),
        Ok(n) => Ok(n),
    }
}

/// Parses one command line (without CRLF). Keywords are
/// case-insensitive; arguments are separated by single spaces (§3), and
/// PASS takes the rest of the line as it is (passwords may hold spaces).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("not UTF-8"))?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    if keyword.len() > 4 || keyword.len() < 3 || !keyword.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ParseError::Unknown);
    }
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    let none = |c: Command| {
        if rest.is_some() {
            Err(ParseError::Syntax("no arguments expected"))
        } else {
            Ok(c)
        }
    };
    let one = |what: &'static str| match args.as_slice() {
        [a] if !a.is_empty() => Ok(*a),
        _ => Err(ParseError::Syntax(what)),
    };
    let optional = || match args.as_slice() {
        [] => Ok(None),
        [a] => number(a).map(Some),
        _ => Err(ParseError::Syntax("at most one message number")),
    };
    match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "QUIT" => none(Command::Quit),
        "STAT" => none(Command::Stat),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "USER" => one("USER needs a name").map(|n| Command::User(n.to_string())),
        "PASS" => match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_string())),
            _ => Err(ParseError::Syntax("PASS needs a password")),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] if !m.is_empty() => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, ir] if !m.is_empty() && !ir.is_empty() => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some(ir.to_string()),
            }),
            _ => Err(ParseError::Syntax("AUTH mechanism [initial-response]")),
        },
        "LIST" => optional().map(Command::List),
        "UIDL" => optional().map(Command::Uidl),
        "RETR" => number(one("RETR needs a message number")?).map(Command::Retr),
        "DELE" => number(one("DELE needs a message number")?).map(Command::Dele),
        "TOP" => match args.as_slice() {
            [n, lines] => {
                let n = number(n)?;
                if lines.is_empty() || !lines.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::Syntax("TOP needs a number of lines"));
                }
                let lines = lines.parse().unwrap_or(u32::MAX);
                Ok(Command::Top(n, lines))
            }
            _ => Err(ParseError::Syntax("TOP msg n")),
        },
        _ => Err(ParseError::Unknown),
    }
}

/// A multi-line body (§3): lines starting with "." get one more, CRLF
/// line ends throughout, then the terminating ".". With `top = Some(n)`,
/// the header section and at most n body lines (§7 TOP).
pub fn multiline(msg: &[u8], top: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 50 + 8);
    let mut in_body = false;
    let mut body_lines = 0u32;
    let mut rest = msg;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_body {
            if top.is_some_and(|n| body_lines >= n) {
                break;
            }
            body_lines += 1;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if !in_body && line.is_empty() {
            in_body = true;
        }
        rest = next;
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands() {
        assert_eq!(parse(b"capa"), Ok(Command::Capa));
        assert_eq!(
            parse(b"USER joe@example.org"),
            Ok(Command::User("joe@example.org".into()))
        );
        assert_eq!(
            parse(b"PASS two words"),
            Ok(Command::Pass("two words".into()))
        );
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"list 2"), Ok(Command::List(Some(2))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse(b"AUTH plain AGpvZQBwdw=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGpvZQBwdw==".into())
            })
        );
        for bad in [
            &b"RETR"[..],
            b"RETR 0",
            b"RETR -1",
            b"RETR +1",
            b"RETR 1 2",
            b"DELE x",
            b"LIST 1 2",
            b"TOP 1",
            b"TOP 1 x",
            b"STAT now",
            b"USER",
            b"PASS",
            b"RETR 99999999999",
        ] {
            assert!(matches!(parse(bad), Err(ParseError::Syntax(_))), "{bad:?}");
        }
        assert_eq!(parse(b"HELO x"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"APOPX"), Err(ParseError::Unknown));
    }

    #[test]
    fn byte_stuffing_and_top() {
        let msg = b"Subject: x\r\n.hidden: y\r\n\r\nline 1\n.line 2\r\nline 3";
        assert_eq!(
            multiline(msg, None),
            b"Subject: x\r\n..hidden: y\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n".to_vec()
        );
        assert_eq!(
            multiline(msg, Some(1)),
            b"Subject: x\r\n..hidden: y\r\n\r\nline 1\r\n.\r\n".to_vec()
        );
        assert_eq!(
            multiline(msg, Some(0)),
            b"Subject: x\r\n..hidden: y\r\n\r\n.\r\n".to_vec()
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&line);
        }

        // Un-stuffing the body gives the message back, line ends as CRLF.
        #[test]
        fn stuffing_round_trips(lines in proptest::collection::vec("[ -~]{0,20}", 0..20)) {
            let msg = lines.iter().map(|l| format!("{l}\r\n")).collect::<String>();
            let out = multiline(msg.as_bytes(), None);
            let text = String::from_utf8(out).unwrap();
            let body = text.strip_suffix(".\r\n").unwrap();
            let unstuffed: String = body
                .split_inclusive("\r\n")
                .map(|l| l.strip_prefix('.').unwrap_or(l))
                .collect();
            prop_assert_eq!(unstuffed, msg);
        }
    }
}
