//! Email/query filters (RFC 8621 §4.4.1) in AND/OR/NOT operator trees:
//! mailboxes, dates, sizes and keywords from the store's metadata, and
//! the text conditions (text, from, to, cc, bcc, subject, body, header),
//! which the full-text index answers where it can and the message's
//! content where it cannot (see `email_text`).

use serde_json::{Map, Value};

use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::fts::fold;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All,
    Cond(Box<Cond>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Vec<Filter>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cond {
    in_mailbox: Option<u32>,
    in_mailbox_other_than: Vec<u32>,
    before: Option<i64>,
    after: Option<i64>,
    min_size: Option<u64>,
    max_size: Option<u64>,
    has_keyword: Option<String>,
    not_keyword: Option<String>,
    /// Keywords every, some or none of the Thread's Emails must have.
    all_in_thread: Option<String>,
    some_in_thread: Option<String>,
    none_in_thread: Option<String>,
    has_attachment: Option<bool>,
    /// Text conditions, all of which must hold.
    pub text: Vec<TextCond>,
}

/// Where a text condition looks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `text`: every header and the text of the body parts.
    Any,
    Body,
    Subject,
    /// `from`, `to`, `cc`, `bcc` and `header`: one header field, by its
    /// lower-case name.
    Header(String),
}

/// A case-insensitive substring condition (RFC 8621 §4.4.1 lets the
/// server choose how text matches; Petrel matches substrings, as IMAP
/// SEARCH does, with the same index).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TextCond {
    pub field: Field,
    /// Folded; empty for `header` with only a name (the field exists).
    pub needle: String,
}

/// One message as the filters see it.
pub struct Candidate<'a> {
    pub mailboxes: &'a [u32],
    /// JMAP keywords, lower case.
    pub keywords: &'a [String],
    pub received_at: i64,
    pub size: u64,
    /// The keywords all and some of the Thread's visible Emails have
    /// (only looked at when the filter has a thread condition).
    pub thread: &'a ThreadKeywords,
    /// `None` until the message's content was read.
    pub has_attachment: Option<bool>,
}

/// The keywords (lower case) that all, and that some, of a Thread's
/// visible Emails have.
#[derive(Debug, Default)]
pub struct ThreadKeywords {
    pub all: std::collections::HashSet<String>,
    pub some: std::collections::HashSet<String>,
}

fn bad(why: impl Into<String>) -> MethodError {
    MethodError::invalid_arguments(why)
}

fn date(v: &Value, name: &str) -> Result<i64, MethodError> {
    v.as_str()
        .and_then(mail_parser::DateTime::parse_rfc3339)
        .map(|d| d.to_timestamp())
        .ok_or_else(|| bad(format!("{name} must be a UTCDate")))
}

fn mailbox(v: &Value) -> Result<u32, MethodError> {
    v.as_str()
        .and_then(id::parse_mailbox)
        .ok_or_else(|| bad(format!("{v} is not a Mailbox id")))
}

/// The words and quoted phrases of a text condition (RFC 8621 §4.4.1):
/// white space divides words; text in single or double quotes is one
/// phrase, where a backslash escapes the next character.
pub fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let mut phrase = String::new();
                while let Some(p) = chars.next() {
                    match p {
                        '\\' => phrase.extend(chars.next()),
                        q if q == c => break,
                        p => phrase.push(p),
                    }
                }
                if !phrase.is_empty() {
                    out.push(phrase);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Filter {
    /// The mailbox, when the filter is exactly `{"inMailbox": id}`.
    pub fn only_mailbox(&self) -> Option<u32> {
        match self {
            Filter::Cond(c) => {
                let b = c.in_mailbox?;
                let rest = Cond {
                    in_mailbox: None,
                    ..(**c).clone()
                };
                (rest == Cond::default()).then_some(b)
            }
            _ => None,
        }
    }
}

pub fn parse(v: Option<&Value>) -> Result<Filter, MethodError> {
    match v {
        None | Some(Value::Null) => Ok(Filter::All),
        Some(Value::Object(m)) => parse_object(m),
        Some(_) => Err(bad("filter must be an object")),
    }
}

fn parse_object(m: &Map<String, Value>) -> Result<Filter, MethodError> {
    if let Some(op) = m.get("operator") {
        let conditions = m
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("a FilterOperator needs conditions"))?
            .iter()
            .map(|c| {
                c.as_object()
                    .ok_or_else(|| bad("conditions must be objects"))
                    .and_then(parse_object)
            })
            .collect::<Result<Vec<_>, _>>()?;
        return match op.as_str() {
            Some("AND") => Ok(Filter::And(conditions)),
            Some("OR") => Ok(Filter::Or(conditions)),
            Some("NOT") => Ok(Filter::Not(conditions)),
            _ => Err(bad("operator must be AND, OR or NOT")),
        };
    }
    let mut c = Cond::default();
    for (k, v) in m {
        match k.as_str() {
            "inMailbox" => c.in_mailbox = Some(mailbox(v)?),
            "inMailboxOtherThan" => {
                c.in_mailbox_other_than = v
                    .as_array()
                    .ok_or_else(|| bad("inMailboxOtherThan must be an array"))?
                    .iter()
                    .map(mailbox)
                    .collect::<Result<_, _>>()?
            }
            "before" => c.before = Some(date(v, k)?),
            "after" => c.after = Some(date(v, k)?),
            "minSize" => {
                c.min_size = Some(
                    v.as_u64()
                        .ok_or_else(|| bad("minSize must be an UnsignedInt"))?,
                )
            }
            "maxSize" => {
                c.max_size = Some(
                    v.as_u64()
                        .ok_or_else(|| bad("maxSize must be an UnsignedInt"))?,
                )
            }
            "hasKeyword"
            | "notKeyword"
            | "allInThreadHaveKeyword"
            | "someInThreadHaveKeyword"
            | "noneInThreadHaveKeyword" => {
                let kw = Some(
                    v.as_str()
                        .ok_or_else(|| bad(format!("{k} must be a keyword")))?
                        .to_ascii_lowercase(),
                );
                match k.as_str() {
                    "hasKeyword" => c.has_keyword = kw,
                    "notKeyword" => c.not_keyword = kw,
                    "allInThreadHaveKeyword" => c.all_in_thread = kw,
                    "someInThreadHaveKeyword" => c.some_in_thread = kw,
                    _ => c.none_in_thread = kw,
                }
            }
            "hasAttachment" => {
                c.has_attachment = Some(
                    v.as_bool()
                        .ok_or_else(|| bad("hasAttachment must be a Boolean"))?,
                )
            }
            "text" | "from" | "to" | "cc" | "bcc" | "subject" | "body" => {
                let needle = v
                    .as_str()
                    .ok_or_else(|| bad(format!("{k} must be a String")))?;
                let field = match k.as_str() {
                    "text" => Field::Any,
                    "body" => Field::Body,
                    "subject" => Field::Subject,
                    name => Field::Header(name.to_string()),
                };
                // §4.4.1: words apart must all be there, a quoted phrase
                // as it is.
                for needle in tokens(needle) {
                    c.text.push(TextCond {
                        field: field.clone(),
                        needle: fold(&needle),
                    });
                }
            }
            "header" => {
                // §4.4.1: [name] or [name, value].
                let list: Vec<&str> = v
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let ok = v.as_array().map(Vec::len) == Some(list.len());
                let (name, needle) = match list[..] {
                    [name] if ok => (name, ""),
                    [name, value] if ok => (name, value),
                    _ => return Err(bad("header must be [name] or [name, value] (Strings)")),
                };
                if name.is_empty() || name.contains(|c: char| c == ':' || c.is_whitespace()) {
                    return Err(bad(format!("`{name}` is not a header field name")));
                }
                c.text.push(TextCond {
                    field: Field::Header(name.to_ascii_lowercase()),
                    needle: fold(needle),
                });
            }
            other => {
                return Err(MethodError::with(
                    "unsupportedFilter",
                    format!("`{other}` is not an Email/query filter property (RFC 8621 §4.4.1)"),
                ))
            }
        }
    }
    Ok(Filter::Cond(Box::new(c)))
}

impl Cond {
    fn by_thread(&self) -> bool {
        self.all_in_thread.is_some()
            || self.some_in_thread.is_some()
            || self.none_in_thread.is_some()
    }
}

impl Filter {
    /// Whether a condition looks at other Emails of the Thread.
    pub fn by_thread(&self) -> bool {
        match self {
            Filter::All => false,
            Filter::Cond(c) => c.by_thread(),
            Filter::And(l) | Filter::Or(l) | Filter::Not(l) => l.iter().any(Filter::by_thread),
        }
    }

    /// Whether every condition is on properties an Email never changes
    /// (RFC 8620 §5.6 upToId): no mailbox or keyword condition.
    pub fn immutable(&self) -> bool {
        match self {
            Filter::All => true,
            Filter::Cond(c) => {
                c.in_mailbox.is_none()
                    && c.in_mailbox_other_than.is_empty()
                    && c.has_keyword.is_none()
                    && c.not_keyword.is_none()
                    && !c.by_thread()
            }
            Filter::And(l) | Filter::Or(l) | Filter::Not(l) => l.iter().all(Filter::immutable),
        }
    }
}

/// Every text condition of the tree, to look up in the index first.
pub fn text_conds<'f>(f: &'f Filter, out: &mut Vec<&'f TextCond>) {
    match f {
        Filter::All => {}
        Filter::Cond(c) => out.extend(c.text.iter()),
        Filter::And(l) | Filter::Or(l) | Filter::Not(l) => {
            l.iter().for_each(|x| text_conds(x, out))
        }
    }
}

/// Whether `m` matches `f`; `None` when that depends on a text condition
/// `text` cannot decide (it answers `None`).
pub fn eval(
    f: &Filter,
    m: &Candidate<'_>,
    text: &mut dyn FnMut(&TextCond) -> Option<bool>,
) -> Option<bool> {
    match f {
        Filter::All => Some(true),
        Filter::And(list) => all(list.iter().map(|x| eval(x, m, text))),
        Filter::Or(list) => any(list.iter().map(|x| eval(x, m, text))),
        Filter::Not(list) => any(list.iter().map(|x| eval(x, m, text))).map(|b| !b),
        Filter::Cond(c) => {
            let meta = c.in_mailbox.is_none_or(|b| m.mailboxes.contains(&b))
                && (c.in_mailbox_other_than.is_empty()
                    || m.mailboxes.iter().any(|b| !c.in_mailbox_other_than.contains(b)))
                // RFC 8621 §4.4.1: before is <, after is >=.
                && c.before.is_none_or(|t| m.received_at < t)
                && c.after.is_none_or(|t| m.received_at >= t)
                && c.min_size.is_none_or(|s| m.size >= s)
                && c.max_size.is_none_or(|s| m.size < s)
                && c.has_keyword.as_ref().is_none_or(|k| m.keywords.contains(k))
                && c.not_keyword.as_ref().is_none_or(|k| !m.keywords.contains(k))
                // §4.4.1: over every Email of the Thread, this one included.
                && c.all_in_thread.as_ref().is_none_or(|k| m.thread.all.contains(k))
                && c.some_in_thread.as_ref().is_none_or(|k| m.thread.some.contains(k))
                && c.none_in_thread.as_ref().is_none_or(|k| !m.thread.some.contains(k));
            if !meta {
                return Some(false);
            }
            let attachment = c
                .has_attachment
                .map(|want| m.has_attachment.map(|has| has == want));
            all(attachment.into_iter().chain(c.text.iter().map(text)))
        }
    }
}

/// Three-valued AND: false wins, then unknown.
fn all(it: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut out = Some(true);
    for v in it {
        match v {
            Some(false) => return Some(false),
            None => out = None,
            Some(true) => {}
        }
    }
    out
}

/// Three-valued OR: true wins, then unknown.
fn any(it: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut out = Some(false);
    for v in it {
        match v {
            Some(true) => return Some(true),
            None => out = None,
            Some(false) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(f: &Filter, m: &Candidate<'_>) -> bool {
        eval(f, m, &mut |_| None).expect("decided without text")
    }

    #[test]
    fn trees_and_conditions() {
        let kw = vec!["$seen".to_string()];
        let m = Candidate {
            mailboxes: &[1, 2],
            keywords: &kw,
            received_at: 1000,
            size: 500,
            thread: &ThreadKeywords::default(),
            has_attachment: Some(false),
        };
        let f = |v: Value| parse(Some(&v)).unwrap();
        // RFC 8621 §4.4.1: a condition with no properties is true.
        assert!(matches(&f(json!({})), &m));
        assert!(matches(
            &f(json!({"inMailbox": "M2", "hasKeyword": "$Seen"})),
            &m
        ));
        assert!(!matches(&f(json!({"inMailbox": "M3"})), &m));
        assert!(matches(&f(json!({"inMailboxOtherThan": ["M1"]})), &m));
        assert!(!matches(
            &f(json!({"inMailboxOtherThan": ["M1", "M2"]})),
            &m
        ));
        assert!(matches(&f(json!({"minSize": 500, "maxSize": 501})), &m));
        assert!(!matches(&f(json!({"maxSize": 500})), &m));
        assert!(matches(
            &f(json!({"after": "1970-01-01T00:16:40Z", "before": "1970-01-01T00:16:41Z"})),
            &m
        ));
        assert!(matches(
            &f(
                json!({"operator": "OR", "conditions": [{"inMailbox": "M9"}, {"notKeyword": "$flagged"}]})
            ),
            &m
        ));
        assert!(!matches(
            &f(json!({"operator": "NOT", "conditions": [{"hasKeyword": "$seen"}]})),
            &m
        ));
        assert_eq!(
            parse(Some(&json!({"textual": "x"}))).unwrap_err().kind,
            "unsupportedFilter"
        );
        assert_eq!(
            parse(Some(&json!({"header": ["a", "b", "c"]})))
                .unwrap_err()
                .kind,
            "invalidArguments"
        );
        assert_eq!(
            parse(Some(&json!({"operator": "XOR", "conditions": []})))
                .unwrap_err()
                .kind,
            "invalidArguments"
        );
        assert_eq!(
            parse(Some(&json!({"before": "yesterday"})))
                .unwrap_err()
                .kind,
            "invalidArguments"
        );
    }

    #[test]
    fn words_and_phrases() {
        assert_eq!(tokens("quick  brown fox"), ["quick", "brown", "fox"]);
        assert_eq!(tokens("say \"quick fox\" now"), ["say", "quick fox", "now"]);
        assert_eq!(tokens("'it\\'s' x"), ["it's", "x"]);
        assert_eq!(tokens("\"a \\\"b\\\" c\""), ["a \"b\" c"]);
        assert!(tokens("   ").is_empty());
    }

    #[test]
    fn text_conditions_are_three_valued() {
        let m = Candidate {
            mailboxes: &[1],
            keywords: &[],
            received_at: 0,
            size: 1,
            thread: &ThreadKeywords::default(),
            has_attachment: None,
        };
        let f = parse(Some(&json!({"operator": "OR", "conditions": [
            {"from": "Alice"}, {"inMailbox": "M1", "header": ["X-Tag"]}
        ]})))
        .unwrap();
        let mut seen = Vec::new();
        text_conds(&f, &mut seen);
        assert_eq!(
            seen,
            [
                &TextCond {
                    field: Field::Header("from".into()),
                    needle: "alice".into()
                },
                &TextCond {
                    field: Field::Header("x-tag".into()),
                    needle: String::new()
                },
            ]
        );
        // Unknown text: unknown result, unless the rest decides.
        assert_eq!(eval(&f, &m, &mut |_| None), None);
        assert_eq!(eval(&f, &m, &mut |t| Some(t.needle.is_empty())), Some(true));
        assert_eq!(eval(&f, &m, &mut |_| Some(false)), Some(false));
        let not = parse(Some(
            &json!({"operator": "NOT", "conditions": [{"inMailbox": "M1", "body": "x"}]}),
        ))
        .unwrap();
        assert_eq!(eval(&not, &m, &mut |_| Some(true)), Some(false));
        let other_box = parse(Some(&json!({"inMailbox": "M2", "body": "x"}))).unwrap();
        assert_eq!(eval(&other_box, &m, &mut |_| None), Some(false));
    }

    /// RFC 8621 §4.4.1: the thread keyword conditions look at the
    /// Thread's Emails, hasAttachment at the content (unknown until read).
    #[test]
    fn thread_and_attachment_conditions() {
        let thread = ThreadKeywords {
            all: ["$seen".to_string()].into(),
            some: ["$seen".to_string(), "$flagged".to_string()].into(),
        };
        let mut m = Candidate {
            mailboxes: &[1],
            keywords: &[],
            received_at: 0,
            size: 1,
            thread: &thread,
            has_attachment: None,
        };
        let f = |v: Value| parse(Some(&v)).unwrap();
        let yes = |v: Value, m: &Candidate<'_>| matches(&f(v), m);
        assert!(yes(json!({"allInThreadHaveKeyword": "$Seen"}), &m));
        assert!(!yes(json!({"allInThreadHaveKeyword": "$flagged"}), &m));
        assert!(yes(json!({"someInThreadHaveKeyword": "$flagged"}), &m));
        assert!(!yes(json!({"someInThreadHaveKeyword": "$draft"}), &m));
        assert!(yes(json!({"noneInThreadHaveKeyword": "$draft"}), &m));
        assert!(!yes(json!({"noneInThreadHaveKeyword": "$flagged"}), &m));
        assert!(f(json!({"noneInThreadHaveKeyword": "$draft"})).by_thread());
        assert!(!f(json!({"noneInThreadHaveKeyword": "$draft"})).immutable());
        assert!(f(json!({"hasAttachment": true, "minSize": 1})).immutable());
        let att = f(json!({"hasAttachment": true}));
        assert_eq!(eval(&att, &m, &mut |_| None), None);
        m.has_attachment = Some(true);
        assert!(matches(&att, &m));
        m.has_attachment = Some(false);
        assert!(!matches(&att, &m));
        assert_eq!(
            parse(Some(&json!({"hasAttachment": "yes"})))
                .unwrap_err()
                .kind,
            "invalidArguments"
        );
    }
}
