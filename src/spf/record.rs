//! SPF record syntax (RFC 7208 §4.5, §4.6, §5, §6, §7.1 and the ABNF of
//! §12). Sans-IO: bytes in, a parsed record or a syntax error out. Any
//! syntax error anywhere makes the whole record a permerror (§4.6), so the
//! parser is strict where the grammar is.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A(HostSpec),
    Mx(HostSpec),
    Ptr(Option<MacroString>),
    Ip4 { net: Ipv4Addr, cidr: u8 },
    Ip6 { net: Ipv6Addr, cidr: u8 },
    Exists(MacroString),
}

impl Mechanism {
    /// Terms that cost a DNS query and count against the limit of 10
    /// (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A(_)
                | Mechanism::Mx(_)
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// The arguments of `a` and `mx`: an optional domain-spec and the prefix
/// lengths for IPv4 and IPv6 (dual-cidr-length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub domain: Option<MacroString>,
    pub cidr4: u8,
    pub cidr6: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// One piece of a macro-string (§7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Macro {
        /// Lower-case macro letter.
        letter: u8,
        /// Upper-case letter: the value is URL-escaped (§7.3).
        escape: bool,
        /// Keep this many right-hand parts (non-zero).
        keep: Option<usize>,
        reverse: bool,
        /// Split on these; "." when empty.
        delimiters: Vec<u8>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroString(pub Vec<Part>);

impl MacroString {
    pub fn uses(&self, letter: u8) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Part::Macro { letter: l, .. } if *l == letter))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError;

type Result<T> = std::result::Result<T, SyntaxError>;

/// Where a macro-string appears decides which macro letters it may use
/// and whether it may hold spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A domain-spec: letters s l o d i p h v.
    Domain,
    /// The value of an unknown modifier: any macro letter.
    Modifier,
    /// An explanation TXT string (§6.2): c r t allowed too, and spaces.
    Explanation,
}

/// Does this TXT record (its strings joined) claim to be SPF version 1
/// (§4.5)? "v=spf1" in any case, then a space or the end.
pub fn is_spf1(txt: &[u8]) -> bool {
    txt.len() >= 6 && txt[..6].eq_ignore_ascii_case(b"v=spf1") && (txt.len() == 6 || txt[6] == b' ')
}

/// Parses a whole record, starting with its version.
pub fn parse(txt: &[u8]) -> Result<Record> {
    if !is_spf1(txt) {
        return Err(SyntaxError);
    }
    let mut record = Record::default();
    for term in txt[6..].split(|b| *b == b' ').filter(|t| !t.is_empty()) {
        let term = std::str::from_utf8(term).map_err(|_| SyntaxError)?;
        if !term.is_ascii() {
            return Err(SyntaxError);
        }
        match classify(term) {
            Term::BadModifier => return Err(SyntaxError),
            Term::Modifier(name, value) => {
                if name.eq_ignore_ascii_case("redirect") {
                    if record.redirect.is_some() {
                        return Err(SyntaxError);
                    }
                    record.redirect = Some(domain_spec(value)?);
                } else if name.eq_ignore_ascii_case("exp") {
                    if record.exp.is_some() {
                        return Err(SyntaxError);
                    }
                    record.exp = Some(domain_spec(value)?);
                } else {
                    // unknown-modifier = name "=" macro-string: checked,
                    // then ignored (§6).
                    macro_string(value, Context::Modifier)?;
                }
            }
            Term::Directive => record.directives.push(directive(term)?),
        }
    }
    Ok(record)
}

enum Term<'a> {
    Modifier(&'a str, &'a str),
    /// `=` comes first but what precedes it is not a valid name.
    BadModifier,
    Directive,
}

/// A term is a modifier when the first of `=`, `:` and `/` in it is `=`;
/// its name must then be ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
/// (§4.6.1, §12).
fn classify(term: &str) -> Term<'_> {
    match term.find(['=', ':', '/']) {
        Some(cut) if term.as_bytes()[cut] == b'=' => {
            let name = &term[..cut];
            let b = name.as_bytes();
            let valid = !b.is_empty()
                && b[0].is_ascii_alphabetic()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if valid {
                Term::Modifier(name, &term[cut + 1..])
            } else {
                Term::BadModifier
            }
        }
        _ => Term::Directive,
    }
}

fn directive(term: &str) -> Result<Directive> {
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let (name, args) = rest.split_at(name_len);
    let name = name.to_ascii_lowercase();
    let mechanism = match name.as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(colon_domain(args)?),
        "exists" => Mechanism::Exists(colon_domain(args)?),
        "ptr" => Mechanism::Ptr(optional_domain(args)?),
        "a" | "mx" => {
            let (args, cidr4, cidr6) = dual_cidr(args)?;
            let spec = HostSpec {
                domain: optional_domain(args)?,
                cidr4,
                cidr6,
            };
            if name == "a" {
                Mechanism::A(spec)
            } else {
                Mechanism::Mx(spec)
            }
        }
        "ip4" => {
            let (net, cidr) = network(args, 32)?;
            Mechanism::Ip4 {
                net: net.parse().map_err(|_| SyntaxError)?,
                cidr,
            }
        }
        "ip6" => {
            let (net, cidr) = network(args, 128)?;
            Mechanism::Ip6 {
                net: net.parse().map_err(|_| SyntaxError)?,
                cidr,
            }
        }
        _ => return Err(SyntaxError),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

fn colon_domain(args: &str) -> Result<MacroString> {
    domain_spec(args.strip_prefix(':').ok_or(SyntaxError)?)
}

fn optional_domain(args: &str) -> Result<Option<MacroString>> {
    if args.is_empty() {
        Ok(None)
    } else {
        colon_domain(args).map(Some)
    }
}

/// A CIDR length: "0" or digits without a leading zero, at most `max`.
fn cidr(digits: &str, max: u8) -> Result<u8> {
    if digits.is_empty()
        || digits.len() > 3
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(SyntaxError);
    }
    let n: u8 = digits.parse().map_err(|_| SyntaxError)?;
    if n > max {
        return Err(SyntaxError);
    }
    Ok(n)
}

/// Splits `[ ":" domain-spec ] [ "/" ip4 ] [ "//" ip6 ]` from the right:
/// a domain-spec may itself contain `/`, a trailing CIDR may not contain
/// anything but digits.
fn dual_cidr(args: &str) -> Result<(&str, u8, u8)> {
    fn trailing_digits(s: &str) -> Option<(&str, &str)> {
        let (head, digits) = s.rsplit_once('/')?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((head, digits))
    }
    let mut rest = args;
    let mut cidr6 = 128;
    if let Some((head, digits)) = trailing_digits(rest) {
        if let Some(head) = head.strip_suffix('/') {
            cidr6 = cidr(digits, 128)?;
            rest = head;
        }
    }
    let mut cidr4 = 32;
    if let Some((head, digits)) = trailing_digits(rest) {
        if !head.ends_with('/') {
            cidr4 = cidr(digits, 32)?;
            rest = head;
        }
    }
    Ok((rest, cidr4, cidr6))
}

fn network(args: &str, max: u8) -> Result<(&str, u8)> {
    let args = args.strip_prefix(':').ok_or(SyntaxError)?;
    match args.split_once('/') {
        Some((net, bits)) => Ok((net, cidr(bits, max)?)),
        None => Ok((args, max)),
    }
}

/// domain-spec = macro-string domain-end; domain-end = ( "." toplabel
/// [ "." ] ) / macro-expand (§7.1).
pub fn domain_spec(s: &str) -> Result<MacroString> {
    if s.is_empty() {
        return Err(SyntaxError);
    }
    let (ms, ends_with_expand) = macro_string_end(s, Context::Domain)?;
    if ends_with_expand {
        return Ok(ms);
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    let (_, top) = body.rsplit_once('.').ok_or(SyntaxError)?;
    if !is_toplabel(top) {
        return Err(SyntaxError);
    }
    Ok(ms)
}

/// toplabel = ( *alphanum ALPHA *alphanum ) /
///            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
fn is_toplabel(l: &str) -> bool {
    let b = l.as_bytes();
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return false;
    }
    if b.contains(&b'-') {
        b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric()
    } else {
        b.iter().any(|c| c.is_ascii_alphabetic())
    }
}

pub fn macro_string(s: &str, ctx: Context) -> Result<MacroString> {
    macro_string_end(s, ctx).map(|(m, _)| m)
}

/// Parses a macro-string; also says whether it ends with a macro-expand.
fn macro_string_end(s: &str, ctx: Context) -> Result<(MacroString, bool)> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut ends_with_expand = false;
    while i < b.len() {
        ends_with_expand = false;
        let c = b[i];
        if c != b'%' {
            let ok = matches!(c, 0x21..=0x24 | 0x26..=0x7e)
                || (c == b' ' && ctx == Context::Explanation);
            if !ok {
                return Err(SyntaxError);
            }
            lit.push(c as char);
            i += 1;
            continue;
        }
        ends_with_expand = true;
        match b.get(i + 1) {
            Some(b'%') => lit.push('%'),
            Some(b'_') => lit.push(' '),
            Some(b'-') => lit.push_str("%20"),
            Some(b'{') => {
                let close = b[i + 2..]
                    .iter()
                    .position(|c| *c == b'}')
                    .ok_or(SyntaxError)?;
                let inner = &b[i + 2..i + 2 + close];
                if !lit.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut lit)));
                }
                parts.push(macro_expand(inner, ctx)?);
                i += 3 + close;
                continue;
            }
            _ => return Err(SyntaxError),
        }
        i += 2;
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(lit));
    }
    Ok((MacroString(parts), ends_with_expand))
}

/// The inside of `%{...}`: macro-letter transformers *delimiter.
fn macro_expand(inner: &[u8], ctx: Context) -> Result<Part> {
    let (&first, rest) = inner.split_first().ok_or(SyntaxError)?;
    let letter = first.to_ascii_lowercase();
    let allowed: &[u8] = match ctx {
        Context::Domain => b"slodipvh",
        Context::Modifier | Context::Explanation => b"slodipvhcrt",
    };
    if !first.is_ascii_alphabetic() || !allowed.contains(&letter) {
        return Err(SyntaxError);
    }
    let ndigits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let keep = if ndigits > 0 {
        let n: usize = std::str::from_utf8(&rest[..ndigits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(SyntaxError)?;
        if n == 0 {
            return Err(SyntaxError);
        }
        Some(n)
    } else {
        None
    };
    let mut rest = &rest[ndigits..];
    let reverse = matches!(rest.first(), Some(b'r' | b'R'));
    if reverse {
        rest = &rest[1..];
    }
    if !rest
        .iter()
        .all(|c| matches!(c, b'.' | b'-' | b'+' | b',' | b'/' | b'_' | b'='))
    {
        return Err(SyntaxError);
    }
    Ok(Part::Macro {
        letter,
        escape: first.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: rest.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Record {
        parse(s.as_bytes()).unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn valid_records() {
        let r = ok("v=spf1 a/24//64 mx:foo:bar/baz.example.com -all exp=%{d}.x.example.");
        assert_eq!(r.directives.len(), 3);
        assert!(matches!(
            r.directives[0].mechanism,
            Mechanism::A(HostSpec {
                domain: None,
                cidr4: 24,
                cidr6: 64
            })
        ));
        assert!(matches!(
            &r.directives[1].mechanism,
            Mechanism::Mx(HostSpec {
                domain: Some(_),
                cidr4: 32,
                cidr6: 128
            })
        ));
        assert_eq!(r.directives[2].qualifier, Qualifier::Fail);
        assert!(r.exp.is_some());
        ok("V=SpF1");
        ok("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all");
        ok("v=spf1 a:foo.example.xn--zckzah ip6:Cafe:Babe:8000::/33 ~all ");
        ok("v=spf1 exists:%{i}.%{l2r-}.user.%{D2} a:%{H}");
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 ptr/0",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 a:foo-bar",
            "v=spf1 a:abc.123",
            "v=spf1 a:museum.",
            "v=spf1 a:example.-com",
            "v=spf1 a:",
            "v=spf1 include",
            "v=spf1 exists:mail.example.com/24",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 exp= -all",
            "v=spf1 redirect:x.example.com",
            "v=spf1 -all foo=%abc",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 -all exp=%{r}.example.com",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 exists:%{l0}.example.com",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 a:ctrl.example.com\rptr",
            "v=spf10",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should not parse");
        }
    }

    proptest! {
        // Whatever bytes a TXT record holds, parsing returns.
        #[test]
        fn any_bytes(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut txt = b"v=spf1 ".to_vec();
            txt.extend(tail);
            let _ = parse(&txt);
        }

        // Records built from valid terms parse, with the terms in order.
        #[test]
        fn built_records(terms in proptest::collection::vec(
            prop_oneof![
                Just("a".to_string()),
                Just("-all".to_string()),
                Just("~mx:example.org/24".to_string()),
                (0u8..=32).prop_map(|n| format!("ip4:192.0.2.0/{n}")),
                (0u8..=128).prop_map(|n| format!("?ip6:2001:db8::/{n}")),
                Just("include:_spf.%{d2}".to_string()),
            ], 0..12)) {
            let text = format!("v=spf1 {}", terms.join(" "));
            let r = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(r.directives.len(), terms.len());
        }
    }
}
