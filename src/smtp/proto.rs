//! SMTP command parsing (RFC 5321 §4.1), sans I/O: a line in, a command out.

/// ESMTP parameters of MAIL/RCPT: upper-cased keyword and optional value.
pub type Params = Vec<(String, Option<String>)>;

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
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
        "EHLO" | "HELO" => {
            if arg.is_empty() || arg.contains(' ') {
                return Err(ParseError::Syntax(
                    "EHLO/HELO needs one domain or address literal",
                ));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(arg.to_string())
            } else {
                Command::Helo(arg.to_string())
            })
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
    } else if local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local
            .chars()
            .any(|c| c.is_ascii_control() || " ()<>[]\\,;:\"@".contains(c))
    {
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

#[cfg(test)]
mod tests {
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
