//! SearchSnippet/get (RFC 8621 §5): the subject and a piece of the body
//! with the filter's text marked. The needles are the `text`, `subject`
//! and `body` conditions of the filter (not those under NOT), matched
//! case-insensitively as Email/query matches them.

use serde_json::{json, Map, Value};

use super::email_filter::{self, Field, Filter};
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

/// The needles that can mark the subject and the body.
fn needles(f: &Filter, negated: bool, subject: &mut Vec<String>, body: &mut Vec<String>) {
    match f {
        Filter::All => {}
        Filter::Cond(c) if !negated => {
            for t in &c.text {
                if t.needle.is_empty() {
                    continue;
                }
                match t.field {
                    Field::Any => {
                        subject.push(t.needle.clone());
                        body.push(t.needle.clone());
                    }
                    Field::Subject => subject.push(t.needle.clone()),
                    Field::Body => body.push(t.needle.clone()),
                    Field::Header(_) => {}
                }
            }
        }
        Filter::Cond(_) => {}
        Filter::And(l) | Filter::Or(l) => l.iter().for_each(|x| needles(x, negated, subject, body)),
        Filter::Not(l) => l.iter().for_each(|x| needles(x, true, subject, body)),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Byte ranges of `text` where a needle (lower case) matches,
/// case-insensitively, merged.
fn matches(text: &str, needles: &[String]) -> Vec<(usize, usize)> {
    let lower: Vec<(usize, char)> = text.char_indices().collect();
    let folded: String = text
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect();
    // Character positions line up: one char folded to one char.
    let starts: Vec<usize> = folded.char_indices().map(|(i, _)| i).collect();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for n in needles {
        let n_chars = n.chars().count();
        let mut from = 0;
        while let Some(pos) = folded[from..].find(n.as_str()) {
            let at = from + pos;
            let ci = starts.iter().position(|s| *s == at).unwrap_or(0);
            let start = lower[ci].0;
            let end = lower.get(ci + n_chars).map_or(text.len(), |x| x.0);
            out.push((start, end));
            from = at + n.len().max(1);
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// `text` escaped, its matches in `<mark>`.
fn marked(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (s, e) in ranges {
        out.push_str(&escape(&text[at..*s]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[*s..*e]));
        out.push_str("</mark>");
        at = *e;
    }
    out.push_str(&escape(&text[at..]));
    out
}

/// The preview: around the first match, at most 255 octets marked.
fn preview(body: &str, needles: &[String]) -> Option<String> {
    let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = *matches(&body, needles).first()?;
    // Start a little before the match, on a character boundary.
    let mut start = first.0.saturating_sub(40);
    while !body.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + 200).min(body.len());
    loop {
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let piece = &body[start..end];
        let out = marked(piece, &matches(piece, needles));
        if out.len() <= 255 || end <= start {
            return Some(out);
        }
        end -= (out.len() - 255).max(1);
    }
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let filter = email_filter::parse(args.get("filter"))?;
    let wanted: Vec<String> = match args.get("emailIds") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => return Err(MethodError::invalid_arguments("emailIds must be an array")),
    };
    let max = cx.core.config.jmap.max_objects_in_get;
    if wanted.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInGet ({max}) emailIds"),
        ));
    }
    let (mut subj, mut body) = (Vec::new(), Vec::new());
    needles(&filter, false, &mut subj, &mut body);
    let mail = &cx.core.mail;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for w in wanted {
        let found = match cx.resolve(&w).as_deref().and_then(id::parse_email) {
            Some(e) => match (
                mail.email_meta(acct, e).await.map_err(store_error)?,
                mail.email_state(acct, e).await.map_err(store_error)?,
            ) {
                (Some(m), Some(st)) if access.email_visible(&st) => Some(m),
                _ => None,
            },
            None => None,
        };
        let Some(meta) = found else {
            not_found.push(w);
            continue;
        };
        let subject = {
            let r = matches(&meta.meta.subject, &subj);
            (!r.is_empty()).then(|| marked(&meta.meta.subject, &r))
        };
        let preview = if body.is_empty() {
            None
        } else {
            let raw = mail.email_raw(&meta).await.map_err(store_error)?;
            let text = mail_parser::MessageParser::default()
                .parse(&raw)
                .map(|m| {
                    let mut t = String::new();
                    for i in 0..m.text_body.len().max(m.html_body.len()) {
                        if let Some(x) = m.body_text(i) {
                            t.push_str(&x);
                            t.push(' ');
                        }
                    }
                    t
                })
                .unwrap_or_default();
            preview(&text, &body)
        };
        list.push(json!({"emailId": w, "subject": subject, "preview": preview}));
    }
    Ok(json!({
        "accountId": id::account(acct),
        "list": list,
        "notFound": if not_found.is_empty() { Value::Null } else { json!(not_found) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_escapes() {
        let n = vec!["foo".to_string()];
        assert_eq!(
            marked("A Foo & <b>", &matches("A Foo & <b>", &n)),
            "A <mark>Foo</mark> &amp; &lt;b&gt;"
        );
        assert_eq!(matches("foofoo", &n), [(0, 6)]);
        assert_eq!(matches("ÄFOO", &n), [(2, 5)]);
        let long = format!("{} the foo is here {}", "x ".repeat(200), "y ".repeat(200));
        let p = preview(&long, &n).unwrap();
        assert!(p.len() <= 255, "{}", p.len());
        assert!(p.contains("<mark>foo</mark>"));
        assert_eq!(preview("nothing", &n), None);
    }

    #[test]
    fn needles_skip_negations() {
        let f = email_filter::parse(Some(&json!({"operator": "AND", "conditions": [
            {"text": "Alpha"}, {"subject": "beta"},
            {"operator": "NOT", "conditions": [{"body": "gamma"}]}
        ]})))
        .unwrap();
        let (mut s, mut b) = (Vec::new(), Vec::new());
        needles(&f, false, &mut s, &mut b);
        assert_eq!(s, ["alpha", "beta"]);
        assert_eq!(b, ["alpha"]);
    }
}
