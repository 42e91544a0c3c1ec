//! Typed arguments: sequence sets (RFC 9051 §9 `sequence-set`), FETCH
//! attributes (§6.4.5) and flag lists.

use super::Token;

/// A sequence set; `u32::MAX` stands for `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(u64, u64)>);

/// `*`, the largest number in use. Numbers go up to 4294967295 (RFC 9051
/// §9 nz-number), which is a number, not `*`: STAR lies above them all.
pub const STAR: u64 = u64::MAX;
/// The `$` of SEARCHRES (RFC 5182): the saved search result.
const SAVED: u64 = 0;

impl SeqSet {
    /// `$`, the saved result of the last SEARCH RETURN (SAVE).
    pub fn is_saved(&self) -> bool {
        self.0 == [(SAVED, SAVED)]
    }

    /// These UIDs, as a set.
    pub fn of(uids: &[u32]) -> SeqSet {
        SeqSet(uids.iter().map(|&u| (u as u64, u as u64)).collect())
    }

    pub fn parse(s: &str) -> Option<SeqSet> {
        if s == "$" {
            return Some(SeqSet(vec![(SAVED, SAVED)]));
        }
        if s.is_empty() || s.len() > 100_000 {
            return None;
        }
        let num = |p: &str| -> Option<u64> {
            if p == "*" {
                Some(STAR)
            } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u32>().ok().filter(|&n| n > 0).map(u64::from)
            } else {
                None
            }
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            ranges.push((a.min(b), a.max(b)));
        }
        Some(SeqSet(ranges))
    }

    /// True if `n` is in the set, with `*` meaning `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let n = n as u64;
        self.0.iter().any(|&(a, b)| {
            let fix = |x: u64| if x == STAR { largest as u64 } else { x };
            let (a, b) = (fix(a), fix(b));
            let (a, b) = (a.min(b), a.max(b));
            n >= a && n <= b
        })
    }
}

/// A body section (RFC 9051 §6.4.5 BODY[<section>]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: SectionText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// The whole part (or the whole message when `part` is empty).
    Full,
    Header,
    HeaderFields {
        not: bool,
        fields: Vec<String>,
    },
    Text,
    Mime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    Body,
    BodyStructure,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// RFC 7162 §3.1.4.1.
    ModSeq,
    /// RFC 8474 §5.1, §5.2.
    EmailId,
    ThreadId,
    /// RFC 8514 §4.1.
    SaveDate,
    /// RFC 3516: a part with its Content-Transfer-Encoding undone.
    Binary {
        part: Vec<u32>,
        peek: bool,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    /// RFC 8970: a short plain-text preview of the message.
    Preview,
    Section {
        section: Section,
        peek: bool,
        partial: Option<(u32, u32)>,
    },
}

/// Parses FETCH attributes: a macro, one attribute or a list.
pub fn parse_fetch_attrs(t: &Token) -> Result<Vec<FetchAttr>, String> {
    match t {
        Token::Atom(a) => match a.to_ascii_uppercase().as_str() {
            "ALL" => Ok(vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
            ]),
            "FAST" => Ok(vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
            ]),
            "FULL" => Ok(vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body,
            ]),
            _ => Ok(vec![parse_attr(a)?]),
        },
        Token::List(items) => {
            if items.is_empty() {
                return Err("Empty FETCH attribute list".into());
            }
            let mut out = Vec::new();
            let mut prev_preview = false;
            for i in items {
                match i {
                    Token::Atom(a) => {
                        let attr = parse_attr(a)?;
                        prev_preview = attr == FetchAttr::Preview;
                        out.push(attr);
                    }
                    // PREVIEW (LAZY): Petrel always has the preview at hand.
                    Token::List(mods)
                        if prev_preview
                            && mods.iter().all(|m| {
                                m.as_string()
                                    .is_some_and(|s| s.eq_ignore_ascii_case("LAZY"))
                            }) =>
                    {
                        prev_preview = false;
                    }
                    _ => return Err("Invalid FETCH attribute".into()),
                }
            }
            Ok(out)
        }
        _ => Err("Invalid FETCH attributes".into()),
    }
}

fn parse_attr(a: &str) -> Result<FetchAttr, String> {
    let upper = a.to_ascii_uppercase();
    let simple = match upper.as_str() {
        "FLAGS" => Some(FetchAttr::Flags),
        "UID" => Some(FetchAttr::Uid),
        "INTERNALDATE" => Some(FetchAttr::InternalDate),
        "RFC822.SIZE" => Some(FetchAttr::Rfc822Size),
        "ENVELOPE" => Some(FetchAttr::Envelope),
        "BODY" => Some(FetchAttr::Body),
        "BODYSTRUCTURE" => Some(FetchAttr::BodyStructure),
        "RFC822" => Some(FetchAttr::Rfc822),
        "RFC822.HEADER" => Some(FetchAttr::Rfc822Header),
        "RFC822.TEXT" => Some(FetchAttr::Rfc822Text),
        "MODSEQ" => Some(FetchAttr::ModSeq),
        "EMAILID" => Some(FetchAttr::EmailId),
        "SAVEDATE" => Some(FetchAttr::SaveDate),
        "THREADID" => Some(FetchAttr::ThreadId),
        "PREVIEW" => Some(FetchAttr::Preview),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok(s);
    }
    for (prefix, kind) in [("BINARY.PEEK[", 0), ("BINARY[", 1), ("BINARY.SIZE[", 2)] {
        let Some(r) = upper.strip_prefix(prefix) else {
            continue;
        };
        let (spec, after) = r.split_once(']').ok_or("Missing `]` in section")?;
        // section-binary: part numbers only (RFC 3516 §4.1).
        let part = if spec.is_empty() {
            Vec::new()
        } else {
            spec.split('.')
                .map(|n| n.parse::<u32>().ok().filter(|&n| n > 0))
                .collect::<Option<Vec<u32>>>()
                .ok_or("BINARY sections are part numbers")?
        };
        return Ok(match kind {
            2 if after.is_empty() => FetchAttr::BinarySize { part },
            2 => return Err("BINARY.SIZE takes no partial".into()),
            _ => FetchAttr::Binary {
                part,
                peek: kind == 0,
                partial: parse_partial(after)?,
            },
        });
    }
    let (peek, rest) = if let Some(r) = upper.strip_prefix("BODY.PEEK[") {
        (true, r)
    } else if let Some(r) = upper.strip_prefix("BODY[") {
        (false, r)
    } else {
        return Err(format!("Unknown FETCH attribute {a}"));
    };
    let close = rest.rfind(']').ok_or("Missing `]` in section")?;
    let spec = &rest[..close];
    let after = &rest[close + 1..];
    // Keep the original case of header field names.
    let orig_spec = &a[a.len() - rest.len()..][..close];
    let section = parse_section(spec, orig_spec)?;
    let partial = parse_partial(after)?;
    Ok(FetchAttr::Section {
        section,
        peek,
        partial,
    })
}

/// `<offset.length>` after a section, if any.
fn parse_partial(after: &str) -> Result<Option<(u32, u32)>, String> {
    if after.is_empty() {
        return Ok(None);
    }
    let inner = after
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or("Bad partial specifier")?;
    let (o, l) = inner.split_once('.').ok_or("Bad partial specifier")?;
    let o: u32 = o.parse().map_err(|_| "Bad partial offset")?;
    let l: u32 = l.parse().map_err(|_| "Bad partial length")?;
    if l == 0 {
        return Err("Partial length must be non-zero".into());
    }
    Ok(Some((o, l)))
}

fn parse_section(spec: &str, orig: &str) -> Result<Section, String> {
    let mut part = Vec::new();
    let mut rest = spec;
    let mut orig_rest = orig;
    while let Some(c) = rest.chars().next() {
        if !c.is_ascii_digit() {
            break;
        }
        let end = rest.find('.').unwrap_or(rest.len());
        let n: u32 = rest[..end].parse().map_err(|_| "Bad section part number")?;
        if n == 0 {
            return Err("Section part numbers start at 1".into());
        }
        if part.len() >= 64 {
            return Err("Section nested too deeply".into());
        }
        part.push(n);
        rest = rest.get(end + 1..).unwrap_or("");
        orig_rest = orig_rest.get(end + 1..).unwrap_or("");
    }
    let text = match rest {
        "" => SectionText::Full,
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !part.is_empty() => SectionText::Mime,
        r if r.starts_with("HEADER.FIELDS") => {
            let not = r.starts_with("HEADER.FIELDS.NOT");
            let list = orig_rest
                .find('(')
                .and_then(|o| {
                    // ")" before "(" (found by fuzzing) is no list.
                    orig_rest
                        .rfind(')')
                        .filter(|c| *c > o)
                        .map(|c| &orig_rest[o + 1..c])
                })
                .ok_or("HEADER.FIELDS needs a list of field names")?;
            let fields: Vec<String> = list
                .split_whitespace()
                .map(|f| f.trim_matches('"').to_string())
                .collect();
            if fields.is_empty() {
                return Err("HEADER.FIELDS needs at least one field name".into());
            }
            SectionText::HeaderFields { not, fields }
        }
        _ => return Err(format!("Unknown section {spec}")),
    };
    Ok(Section { part, text })
}

/// Flags of a STORE or APPEND: `(\Seen $Label)` or a single flag.
pub fn parse_flags(t: &Token) -> Result<Vec<String>, String> {
    let items: Vec<&Token> = match t {
        Token::List(l) => l.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for i in items {
        let Token::Atom(a) = i else {
            return Err("Flags must be atoms".into());
        };
        let flag = normalize_flag(a).ok_or_else(|| format!("Invalid flag {a}"))?;
        if !out.iter().any(|f: &String| f.eq_ignore_ascii_case(&flag)) {
            out.push(flag);
        }
    }
    Ok(out)
}

/// System flags in their canonical case; keywords as given.
pub fn normalize_flag(a: &str) -> Option<String> {
    if let Some(sys) = a.strip_prefix('\\') {
        for f in ["Seen", "Answered", "Flagged", "Deleted", "Draft"] {
            if sys.eq_ignore_ascii_case(f) {
                return Some(format!("\\{f}"));
            }
        }
        // \Recent cannot be set (RFC 3501 §6.4.6); other \ names are invalid.
        return None;
    }
    if a.is_empty()
        || a.bytes()
            .any(|b| b <= 0x20 || b >= 0x7f || b"(){%*\"\\]".contains(&b))
    {
        return None;
    }
    Some(a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqsets() {
        let s = SeqSet::parse("1:3,5,7:*").unwrap();
        assert!(s.contains(2, 10) && s.contains(5, 10) && s.contains(10, 10));
        assert!(!s.contains(4, 10) && !s.contains(6, 10));
        assert!(SeqSet::parse("*:4").unwrap().contains(5, 5));
        // 4294967295 is a number, not `*` (RFC 9051 §9).
        let top = SeqSet::parse("11:4294967295").unwrap();
        assert!(!top.contains(10, 10) && top.contains(u32::MAX, 10));
        assert!(SeqSet::parse("4294967296").is_none());
        for bad in ["", "0", "1:", "a", "1,,2", "-1", "1:0"] {
            assert!(SeqSet::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn fetch_attrs() {
        let t = Token::Atom("BODY.PEEK[1.2.HEADER.FIELDS (From X-Custom)]<10.20>".into());
        assert_eq!(
            parse_fetch_attrs(&t).unwrap(),
            vec![FetchAttr::Section {
                section: Section {
                    part: vec![1, 2],
                    text: SectionText::HeaderFields {
                        not: false,
                        fields: vec!["From".into(), "X-Custom".into()]
                    }
                },
                peek: true,
                partial: Some((10, 20))
            }]
        );
        assert_eq!(
            parse_fetch_attrs(&Token::Atom("fast".into()))
                .unwrap()
                .len(),
            3
        );
        assert!(parse_fetch_attrs(&Token::Atom("BODY[0]".into())).is_err());
        assert!(parse_fetch_attrs(&Token::Atom("BODY[MIME]".into())).is_err());
        assert!(parse_fetch_attrs(&Token::Atom("NOPE".into())).is_err());
    }

    #[test]
    fn flags() {
        let t = Token::List(vec![
            Token::Atom("\\seen".into()),
            Token::Atom("$Label1".into()),
            Token::Atom("\\SEEN".into()),
        ]);
        assert_eq!(
            parse_flags(&t).unwrap(),
            vec!["\\Seen".to_string(), "$Label1".to_string()]
        );
        assert!(parse_flags(&Token::Atom("\\Recent".into())).is_err());
        assert!(parse_flags(&Token::Atom("\\Bogus".into())).is_err());
    }
}
