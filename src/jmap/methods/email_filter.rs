//! Email/query filters (RFC 8621 §4.4.1) that the store's metadata can
//! answer: mailboxes, dates, sizes and keywords, in AND/OR/NOT operator
//! trees. Text filters (text, from, to, cc, bcc, subject, body, header)
//! are not built yet and answer `unsupportedFilter`.

use serde_json::{Map, Value};

use crate::jmap::id;
use crate::jmap::request::MethodError;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All,
    Cond(Cond),
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
}

/// One message as the filters see it.
pub struct Candidate<'a> {
    pub mailboxes: &'a [u32],
    /// JMAP keywords, lower case.
    pub keywords: &'a [String],
    pub received_at: i64,
    pub size: u64,
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
            "hasKeyword" | "notKeyword" => {
                let kw = v
                    .as_str()
                    .ok_or_else(|| bad(format!("{k} must be a keyword")))?
                    .to_ascii_lowercase();
                if k == "hasKeyword" {
                    c.has_keyword = Some(kw)
                } else {
                    c.not_keyword = Some(kw)
                }
            }
            other => {
                return Err(MethodError::with(
                    "unsupportedFilter",
                    format!("the filter `{other}` is not supported yet"),
                ))
            }
        }
    }
    Ok(Filter::Cond(c))
}

pub fn matches(f: &Filter, m: &Candidate<'_>) -> bool {
    match f {
        Filter::All => true,
        Filter::And(list) => list.iter().all(|x| matches(x, m)),
        Filter::Or(list) => list.iter().any(|x| matches(x, m)),
        Filter::Not(list) => !list.iter().any(|x| matches(x, m)),
        Filter::Cond(c) => {
            c.in_mailbox.is_none_or(|b| m.mailboxes.contains(&b))
                && (c.in_mailbox_other_than.is_empty()
                    || m.mailboxes.iter().any(|b| !c.in_mailbox_other_than.contains(b)))
                // RFC 8621 §4.4.1: before is <, after is >=.
                && c.before.is_none_or(|t| m.received_at < t)
                && c.after.is_none_or(|t| m.received_at >= t)
                && c.min_size.is_none_or(|s| m.size >= s)
                && c.max_size.is_none_or(|s| m.size < s)
                && c.has_keyword.as_ref().is_none_or(|k| m.keywords.contains(k))
                && c.not_keyword.as_ref().is_none_or(|k| !m.keywords.contains(k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trees_and_conditions() {
        let kw = vec!["$seen".to_string()];
        let m = Candidate {
            mailboxes: &[1, 2],
            keywords: &kw,
            received_at: 1000,
            size: 500,
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
            parse(Some(&json!({"text": "x"}))).unwrap_err().kind,
            "unsupportedFilter"
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
}
