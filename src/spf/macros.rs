//! Macro expansion (RFC 7208 §7.2–§7.4).

use std::net::IpAddr;

use super::record::{MacroString, Part};

/// The values macros expand to, for one check_host() call.
pub struct Vars<'a> {
    /// <sender>: local-part@domain.
    pub local: &'a str,
    pub sender_domain: &'a str,
    /// <domain> of the current check_host() call.
    pub domain: &'a str,
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The validated domain name of <ip> (`p`), when the string uses it.
    pub validated: Option<&'a str>,
    /// This server's name (`r`).
    pub receiver: &'a str,
    pub now: i64,
}

/// `i`: dotted quad, or 32 dot-separated nibbles for IPv6 (§7.3).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .map(|n| format!("{n:x}"))
            .collect::<Vec<_>>()
            .join("."),
    }
}

fn value(letter: u8, v: &Vars) -> String {
    match letter {
        b's' => format!("{}@{}", v.local, v.sender_domain),
        b'l' => v.local.to_string(),
        b'o' => v.sender_domain.to_string(),
        b'd' => v.domain.to_string(),
        b'i' => dotted(v.ip),
        b'p' => v.validated.unwrap_or("unknown").to_string(),
        b'v' => match v.ip {
            IpAddr::V4(_) => "in-addr".into(),
            IpAddr::V6(_) => "ip6".into(),
        },
        b'h' => v.helo.to_string(),
        // `c`: the address in its usual text form (RFC 5952 for IPv6).
        b'c' => v.ip.to_string(),
        b'r' => v.receiver.to_string(),
        b't' => v.now.to_string(),
        _ => String::new(),
    }
}

/// URL escaping of upper-case macros: everything outside RFC 3986's
/// unreserved set as %XX.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn expand(ms: &MacroString, v: &Vars) -> String {
    let mut out = String::new();
    for part in &ms.0 {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Macro {
                letter,
                escape: esc,
                keep,
                reverse,
                delimiters,
            } => {
                let raw = value(*letter, v);
                let delims: &[u8] = if delimiters.is_empty() {
                    b"."
                } else {
                    delimiters
                };
                let mut parts: Vec<&str> =
                    raw.split(|c: char| delims.contains(&(c as u8))).collect();
                if *reverse {
                    parts.reverse();
                }
                if let Some(n) = keep {
                    let skip = parts.len().saturating_sub(*n);
                    parts.drain(..skip);
                }
                let joined = parts.join(".");
                out.push_str(&if *esc { escape(&joined) } else { joined });
            }
        }
    }
    out
}

/// A macro-expanded domain-spec made ready for a query: no trailing dot,
/// and no longer than 253 characters, dropping labels from the left
/// (§7.3).
pub fn to_query_name(expanded: &str) -> String {
    let mut name = expanded.strip_suffix('.').unwrap_or(expanded);
    while name.len() > 253 {
        match name.split_once('.') {
            Some((_, rest)) => name = rest,
            None => break,
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::record::{domain_spec, macro_string, Context};
    use super::*;

    fn vars(ip: &str) -> Vars<'static> {
        Vars {
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated: None,
            receiver: "mx.petrel.test",
            now: 1_000,
        }
    }

    // The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples() {
        let v = vars("192.0.2.3");
        let cases = [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ];
        for (spec, want) in cases {
            let ms = macro_string(spec, Context::Domain).unwrap();
            assert_eq!(expand(&ms, &v), want, "{spec}");
        }
        let v6 = vars("2001:db8::cb01");
        let ms = domain_spec("%{ir}.%{v}._spf.%{d2}").unwrap();
        assert_eq!(
            expand(&ms, &v6),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_and_specials() {
        let mut v = vars("192.0.2.3");
        v.local = "~jack&jill=up";
        let ms = macro_string("%{L} %%%_%-", Context::Explanation).unwrap();
        assert_eq!(expand(&ms, &v), "~jack%26jill%3Dup % %20");
    }

    #[test]
    fn long_names_lose_labels_on_the_left() {
        let long = format!("{}.example.com.", "abcdefghi.".repeat(30));
        let name = to_query_name(&long);
        assert!(name.len() <= 253);
        assert!(name.ends_with(".example.com"));
        assert!(!name.starts_with('.'));
    }
}
