//! Making a message from an Email/set `create` object (RFC 8621 §4.6):
//! header fields from the convenience properties, `header:` properties
//! and `headers`; the body from `bodyStructure` or from textBody/
//! htmlBody/attachments, with text from `bodyValues` and other content
//! from blobs. mail-builder writes the MIME.

use std::collections::HashMap;

use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;
use mail_builder::headers::HeaderType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use serde_json::{json, Map, Value};

use super::email_body::{parse_header_prop, Form};

/// A SetError for the create (§5.3).
pub type SetError = Value;

fn invalid(property: &str, why: impl Into<String>) -> SetError {
    json!({"type": "invalidProperties", "properties": [property], "description": why.into()})
}

/// Every blobId the object refers to, to read before building.
pub fn blob_ids(obj: &Map<String, Value>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(o) = v.as_object() {
            if let Some(b) = o.get("blobId").and_then(Value::as_str) {
                out.push(b.to_string());
            }
            if let Some(subs) = o.get("subParts").and_then(Value::as_array) {
                subs.iter().for_each(|s| walk(s, out));
            }
        }
    }
    let mut out = Vec::new();
    if let Some(b) = obj.get("bodyStructure") {
        walk(b, &mut out);
    }
    for list in ["textBody", "htmlBody", "attachments"] {
        if let Some(a) = obj.get(list).and_then(Value::as_array) {
            a.iter().for_each(|p| walk(p, &mut out));
        }
    }
    out
}

fn addresses(v: &Value, prop: &str) -> Result<Address<'static>, SetError> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid(prop, "must be an array of EmailAddress"))?;
    let mut out = Vec::new();
    for a in list {
        let email = a
            .get("email")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(prop, "each EmailAddress needs an email"))?;
        let name = a.get("name").and_then(Value::as_str).map(str::to_string);
        out.push(Address::new_address(name, email.to_string()));
    }
    Ok(Address::new_list(out))
}

fn strings(v: &Value, prop: &str) -> Result<Vec<String>, SetError> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
        .ok_or_else(|| invalid(prop, "must be an array of strings"))
}

fn date(v: &Value, prop: &str) -> Result<Date, SetError> {
    v.as_str()
        .and_then(mail_parser::DateTime::parse_rfc3339)
        .map(|d| Date::new(d.to_timestamp()))
        .ok_or_else(|| invalid(prop, "must be a Date"))
}

/// One header value in a parsed form, as mail-builder writes it.
fn header_value(form: Form, v: &Value, prop: &str) -> Result<HeaderType<'static>, SetError> {
    Ok(match form {
        Form::Raw => HeaderType::Raw(Raw::new(
            v.as_str()
                .ok_or_else(|| invalid(prop, "must be a String"))?
                .trim_start()
                .to_string(),
        )),
        Form::Text => HeaderType::Text(Text::new(
            v.as_str()
                .ok_or_else(|| invalid(prop, "must be a String"))?
                .to_string(),
        )),
        Form::Addresses => HeaderType::Address(addresses(v, prop)?),
        Form::GroupedAddresses => {
            let groups = v
                .as_array()
                .ok_or_else(|| invalid(prop, "must be an array of EmailAddressGroup"))?;
            let mut out = Vec::new();
            for g in groups {
                let list = addresses(g.get("addresses").unwrap_or(&Value::Null), prop)?;
                match g.get("name").and_then(Value::as_str) {
                    Some(n) => out.push(Address::new_group(
                        Some(n.to_string()),
                        match list {
                            Address::List(l) => l,
                            other => vec![other],
                        },
                    )),
                    None => out.push(list),
                }
            }
            HeaderType::Address(Address::new_list(out))
        }
        Form::MessageIds => {
            HeaderType::MessageId(MessageId::new_list(strings(v, prop)?.into_iter()))
        }
        Form::Date => HeaderType::Date(date(v, prop)?),
        Form::Urls => HeaderType::URL(URL::new_list(strings(v, prop)?.into_iter())),
    })
}

/// The header fields of the object (or of a body part), in the order
/// given, with their names.
fn header_fields(
    obj: &Map<String, Value>,
    top: bool,
) -> Result<Vec<(String, HeaderType<'static>)>, SetError> {
    let mut out: Vec<(String, HeaderType<'static>)> = Vec::new();
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        let field = match (top, k.as_str()) {
            (true, "from") => Some(("From", Form::Addresses)),
            (true, "to") => Some(("To", Form::Addresses)),
            (true, "cc") => Some(("Cc", Form::Addresses)),
            (true, "bcc") => Some(("Bcc", Form::Addresses)),
            (true, "replyTo") => Some(("Reply-To", Form::Addresses)),
            (true, "sender") => Some(("Sender", Form::Addresses)),
            (true, "subject") => Some(("Subject", Form::Text)),
            (true, "sentAt") => Some(("Date", Form::Date)),
            (true, "messageId") => Some(("Message-ID", Form::MessageIds)),
            (true, "inReplyTo") => Some(("In-Reply-To", Form::MessageIds)),
            (true, "references") => Some(("References", Form::MessageIds)),
            _ => None,
        };
        if let Some((name, form)) = field {
            out.push((name.to_string(), header_value(form, v, k)?));
            continue;
        }
        // §4.6: header fields are given one by one, never as `headers`.
        if k == "headers" {
            return Err(invalid(
                k,
                "set each header field as a header:{name} property",
            ));
        }
        let hp = parse_header_prop(k).map_err(|e| invalid(k, e.description.unwrap_or_default()))?;
        if let Some(hp) = hp {
            if hp.all {
                for item in v
                    .as_array()
                    .ok_or_else(|| invalid(k, ":all takes an array"))?
                {
                    out.push((hp.name.clone(), header_value(hp.form, item, k)?));
                }
            } else {
                out.push((hp.name.clone(), header_value(hp.form, v, k)?));
            }
        }
    }
    // §4.6: a field may be given once, in one form; the server chooses
    // the transfer encoding.
    for (i, (name, _)) in out.iter().enumerate() {
        if out[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            && !obj.keys().any(|k| k.ends_with(":all"))
        {
            return Err(invalid(name, format!("the {name} field is given twice")));
        }
        if name.eq_ignore_ascii_case("Content-Transfer-Encoding") {
            return Err(invalid(name, "the server chooses the transfer encoding"));
        }
        if top && name.to_ascii_lowercase().starts_with("content-") {
            return Err(invalid(
                name,
                "Content-* fields belong to body parts, not the Email",
            ));
        }
    }
    Ok(out)
}

struct Build<'a> {
    values: &'a Map<String, Value>,
    blobs: &'a HashMap<String, Vec<u8>>,
    missing: Vec<String>,
}

impl Build<'_> {
    /// A body part from an EmailBodyPart object.
    fn part(&mut self, p: &Value, default_type: &str) -> Result<MimePart<'static>, SetError> {
        let o = p
            .as_object()
            .ok_or_else(|| invalid("bodyStructure", "a body part must be an object"))?;
        let kind = o
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(default_type)
            .to_ascii_lowercase();
        let mut ct = ContentType::new(kind.clone());
        let contents = if let Some(subs) = o.get("subParts").and_then(Value::as_array) {
            if !kind.starts_with("multipart/") {
                return Err(invalid(
                    "bodyStructure",
                    "only multipart/* parts have subParts",
                ));
            }
            let mut parts = Vec::new();
            for s in subs {
                parts.push(self.part(s, "text/plain")?);
            }
            BodyPart::Multipart(parts)
        } else if let Some(pid) = o.get("partId").and_then(Value::as_str) {
            // §4.6: the server encodes bodyValues as it likes.
            for k in ["charset", "size"] {
                if o.contains_key(k) {
                    return Err(invalid(k, "not with a partId"));
                }
            }
            let v = self
                .values
                .get(pid)
                .ok_or_else(|| invalid("bodyValues", format!("no bodyValue for partId {pid}")))?;
            // §4.6: values sent must be whole and well encoded.
            if v.get("isTruncated") == Some(&json!(true))
                || v.get("isEncodingProblem") == Some(&json!(true))
            {
                return Err(invalid(
                    "bodyValues",
                    "a bodyValue sent must not be truncated or an encoding problem",
                ));
            }
            if !kind.starts_with("text/") {
                return Err(invalid("bodyStructure", "a partId part must be text/*"));
            }
            let text = v
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("bodyValues", "value must be a String"))?;
            ct = ct.attribute("charset", "utf-8");
            BodyPart::Text(text.replace("\r\n", "\n").replace('\n', "\r\n").into())
        } else if let Some(b) = o.get("blobId").and_then(Value::as_str) {
            match self.blobs.get(b) {
                Some(data) => {
                    if let Some(cs) = o.get("charset").and_then(Value::as_str) {
                        ct = ct.attribute("charset", cs.to_string());
                    }
                    BodyPart::Binary(data.clone().into())
                }
                None => {
                    self.missing.push(b.to_string());
                    BodyPart::Binary(Vec::new().into())
                }
            }
        } else {
            return Err(invalid(
                "bodyStructure",
                "a body part needs subParts, a partId or a blobId",
            ));
        };
        let name = o.get("name").and_then(Value::as_str);
        if let Some(n) = name {
            ct = ct.attribute("name", n.to_string());
        }
        let mut part = MimePart::new(ct, contents);
        match (o.get("disposition").and_then(Value::as_str), name) {
            (Some("inline"), _) => part = part.inline(),
            (Some(_), Some(n)) | (None, Some(n)) => part = part.attachment(n.to_string()),
            (Some(d), None) => {
                part = part.header(
                    "Content-Disposition",
                    HeaderType::ContentType(ContentType::new(d.to_string())),
                )
            }
            (None, None) => {}
        }
        if let Some(cid) = o.get("cid").and_then(Value::as_str) {
            part = part.cid(cid.to_string());
        }
        if let Some(l) = o.get("language").and_then(Value::as_array) {
            let tags: Vec<&str> = l.iter().filter_map(Value::as_str).collect();
            if !tags.is_empty() {
                part = part.language(tags.join(", "));
            }
        }
        if let Some(l) = o.get("location").and_then(Value::as_str) {
            part = part.location(l.to_string());
        }
        for (name, value) in header_fields(o, false)? {
            part = part.header(name, value);
        }
        Ok(part)
    }

    /// The body from textBody/htmlBody/attachments (§4.6): the text and
    /// HTML as alternatives, attachments after them in a mixed part.
    fn flat(&mut self, obj: &Map<String, Value>) -> Result<MimePart<'static>, SetError> {
        let one = |name: &str, kind: &str| -> Result<Option<Value>, SetError> {
            match obj.get(name).and_then(Value::as_array).map(Vec::as_slice) {
                None | Some([]) => Ok(None),
                Some([p]) => {
                    let t = p.get("type").and_then(Value::as_str).unwrap_or(kind);
                    if !t.eq_ignore_ascii_case(kind) {
                        return Err(invalid(name, format!("must be {kind}")));
                    }
                    Ok(Some(p.clone()))
                }
                Some(_) => Err(invalid(name, "holds at most one part")),
            }
        };
        let text = one("textBody", "text/plain")?
            .map(|p| self.part(&p, "text/plain"))
            .transpose()?;
        let html = one("htmlBody", "text/html")?
            .map(|p| self.part(&p, "text/html"))
            .transpose()?;
        let body = match (text, html) {
            (Some(t), Some(h)) => MimePart::new("multipart/alternative", vec![t, h]),
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => MimePart::new("text/plain", ""),
        };
        let atts = obj
            .get("attachments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if atts.is_empty() {
            return Ok(body);
        }
        let mut parts = vec![body];
        for a in &atts {
            parts.push(self.part(a, "application/octet-stream")?);
        }
        Ok(MimePart::new("multipart/mixed", parts))
    }
}

/// The message for `obj`, or the SetError (invalidProperties, or
/// blobNotFound listing the blob ids `blobs` lacks).
pub fn build(
    obj: &Map<String, Value>,
    blobs: &HashMap<String, Vec<u8>>,
    hostname: &str,
) -> Result<Vec<u8>, SetError> {
    if obj.contains_key("bodyStructure")
        && ["textBody", "htmlBody", "attachments"]
            .iter()
            .any(|k| obj.contains_key(*k))
    {
        return Err(invalid(
            "bodyStructure",
            "give bodyStructure or textBody/htmlBody/attachments, not both",
        ));
    }
    let empty = Map::new();
    let values = match obj.get("bodyValues") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("bodyValues", "must be an object")),
    };
    let mut b = Build {
        values,
        blobs,
        missing: Vec::new(),
    };
    let body = match obj.get("bodyStructure") {
        Some(s) => b.part(s, "text/plain")?,
        None => b.flat(obj)?,
    };
    if !b.missing.is_empty() {
        return Err(json!({"type": "blobNotFound", "notFound": b.missing}));
    }
    let mut msg = MessageBuilder::new();
    let fields = header_fields(obj, true)?;
    // §4.6: the bodyStructure root does not repeat the Email's fields.
    if let Some(root) = obj.get("bodyStructure").and_then(Value::as_object) {
        for (name, _) in header_fields(root, false)? {
            if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(invalid(
                    &name,
                    "given on the Email and on its bodyStructure",
                ));
            }
        }
    }
    let has = |n: &str| fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(n));
    // §4.1.3: sentAt defaults to the time of creation; a Message-ID is
    // made when there is none, as submission would.
    if !has("Date") {
        msg = msg.date(Date::new(crate::core::unix_now()));
    }
    if !has("Message-ID") {
        msg = msg.message_id(crate::core::new_message_id(hostname));
    }
    for (name, value) in fields {
        msg = msg.header(name, value);
    }
    msg.body(body)
        .write_to_vec()
        .map_err(|e| invalid("bodyStructure", format!("cannot write the message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(raw).unwrap()
    }

    #[test]
    fn flat_bodies_with_attachments() {
        let o = obj(json!({
            "from": [{"name": "Joe", "email": "joe@example.org"}],
            "to": [{"email": "ann@remote.test"}],
            "subject": "Résumé",
            "header:X-Tag:asText": "blue",
            "textBody": [{"partId": "t", "type": "text/plain"}],
            "htmlBody": [{"partId": "h", "type": "text/html"}],
            "bodyValues": {"t": {"value": "Hi\nthere"}, "h": {"value": "<p>Hi</p>"}},
            "attachments": [{"blobId": "U1", "type": "application/pdf", "name": "cv.pdf"}]
        }));
        assert_eq!(blob_ids(&o), ["U1"]);
        let blobs = HashMap::from([("U1".to_string(), b"%PDF-1".to_vec())]);
        let raw = build(&o, &blobs, "mx.example.org").unwrap();
        let m = parse(&raw);
        assert_eq!(m.subject(), Some("Résumé"));
        assert_eq!(
            m.from().unwrap().first().unwrap().address(),
            Some("joe@example.org")
        );
        assert!(m.message_id().unwrap().ends_with("@mx.example.org"));
        assert!(m.date().is_some());
        assert_eq!(m.header("X-Tag").and_then(|h| h.as_text()), Some("blue"));
        assert_eq!(m.body_text(0).unwrap(), "Hi\r\nthere");
        assert!(m.body_html(0).unwrap().contains("<p>Hi</p>"));
        let att = m.attachment(0).unwrap();
        assert_eq!(att.contents(), b"%PDF-1");
        use mail_parser::MimeHeaders;
        assert_eq!(att.attachment_name(), Some("cv.pdf"));
    }

    #[test]
    fn structures_and_errors() {
        let o = obj(json!({
            "bodyStructure": {"type": "multipart/mixed", "subParts": [
                {"partId": "1", "type": "text/plain"},
                {"blobId": "U9", "type": "image/png", "disposition": "inline", "cid": "img1"}
            ]},
            "bodyValues": {"1": {"value": "see"}}
        }));
        let missing = build(&o, &HashMap::new(), "h").unwrap_err();
        assert_eq!(missing, json!({"type": "blobNotFound", "notFound": ["U9"]}));
        let blobs = HashMap::from([("U9".to_string(), vec![1, 2, 3])]);
        let raw = build(&o, &blobs, "h").unwrap();
        let m = parse(&raw);
        assert_eq!(m.parts.len(), 3);
        let err = |v: Value| build(&obj(v), &HashMap::new(), "h").unwrap_err()["type"].clone();
        assert_eq!(
            err(json!({"textBody": [{"partId": "x"}]})),
            "invalidProperties"
        );
        assert_eq!(
            err(
                json!({"textBody": [{"partId": "x"}], "bodyValues": {"x": {"value": "a", "isTruncated": true}}})
            ),
            "invalidProperties"
        );
        assert_eq!(
            err(json!({"textBody": [{"partId": "a", "type": "text/html"}]})),
            "invalidProperties"
        );
        assert_eq!(
            err(json!({"subject": "a", "header:Subject:asText": "b"})),
            "invalidProperties"
        );
        assert_eq!(
            err(json!({"header:Content-Type": " text/plain"})),
            "invalidProperties"
        );
        assert_eq!(err(json!({"header:From:asText": "x"})), "invalidProperties");
        assert_eq!(
            err(json!({"headers": [{"name": "X", "value": "y"}]})),
            "invalidProperties"
        );
        assert_eq!(
            err(
                json!({"textBody": [{"partId": "t", "charset": "latin1"}], "bodyValues": {"t": {"value": "x"}}})
            ),
            "invalidProperties"
        );
        assert_eq!(
            err(
                json!({"bodyStructure": {"partId": "t", "header:Content-Transfer-Encoding": " base64"}, "bodyValues": {"t": {"value": "x"}}})
            ),
            "invalidProperties"
        );
        assert_eq!(
            err(json!({"bodyStructure": {"partId": "1"}, "textBody": []})),
            "invalidProperties"
        );
    }
}
