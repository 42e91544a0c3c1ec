//! The parsed parts of an Email (RFC 8621 §4.1.2-§4.1.4): header fields
//! in their parsed forms (`header:{name}[:as{form}][:all]`), the header
//! list, the MIME tree as EmailBodyParts, the textBody/htmlBody/
//! attachments lists and bodyValues. Parsing is mail-parser's, whose
//! body lists follow the algorithm §4.1.4 suggests.

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, Header, HeaderValue, Message, MessagePart, MimeHeaders, PartType};
use serde_json::{json, Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::jmap::id;
use crate::jmap::request::MethodError;

/// The parsed forms of §4.1.2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Form {
    Raw,
    Text,
    Addresses,
    GroupedAddresses,
    MessageIds,
    Date,
    Urls,
}

/// A `header:` property.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderProp {
    /// The property as asked for, which is also the response's key.
    pub property: String,
    pub name: String,
    pub form: Form,
    pub all: bool,
}

/// The fields RFC 5322 and RFC 2369 define, with the forms §4.1.2 allows
/// for them (Raw is always allowed); any other field allows every form.
fn allowed(name: &str, form: Form) -> bool {
    const ADDRESSES: &[&str] = &[
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-reply-to",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    ];
    const TEXT: &[&str] = &["subject", "comments", "keywords", "list-id"];
    const IDS: &[&str] = &[
        "message-id",
        "in-reply-to",
        "references",
        "resent-message-id",
    ];
    const DATES: &[&str] = &["date", "resent-date"];
    const URLS: &[&str] = &[
        "list-help",
        "list-unsubscribe",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
    ];
    // Fields of RFC 5322 §3.6 that have none of the forms.
    const OTHER_KNOWN: &[&str] = &["return-path", "received", "resent-date"];
    let n = name.to_ascii_lowercase();
    let n = n.as_str();
    let known = [ADDRESSES, TEXT, IDS, DATES, URLS, OTHER_KNOWN]
        .iter()
        .any(|l| l.contains(&n));
    match form {
        Form::Raw => true,
        _ if !known => true,
        Form::Text => TEXT.contains(&n),
        Form::Addresses | Form::GroupedAddresses => ADDRESSES.contains(&n),
        Form::MessageIds => IDS.contains(&n),
        Form::Date => DATES.contains(&n),
        Form::Urls => URLS.contains(&n),
    }
}

/// Parses `header:{name}[:as{form}][:all]`; `Ok(None)` for any other
/// property.
pub fn parse_header_prop(p: &str) -> Result<Option<HeaderProp>, MethodError> {
    let Some(rest) = p.strip_prefix("header:") else {
        return Ok(None);
    };
    let bad = || MethodError::invalid_arguments(format!("`{p}` is not a valid header property"));
    let mut it = rest.split(':');
    let name = it.next().unwrap_or_default();
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(bad());
    }
    let mut form = Form::Raw;
    let mut all = false;
    let mut next = it.next();
    if let Some(f) = next.and_then(|s| s.strip_prefix("as")) {
        form = match f {
            "Raw" => Form::Raw,
            "Text" => Form::Text,
            "Addresses" => Form::Addresses,
            "GroupedAddresses" => Form::GroupedAddresses,
            "MessageIds" => Form::MessageIds,
            "Date" => Form::Date,
            "URLs" => Form::Urls,
            _ => return Err(bad()),
        };
        next = it.next();
    }
    if next == Some("all") {
        all = true;
        next = it.next();
    }
    if next.is_some() {
        return Err(bad());
    }
    if !allowed(name, form) {
        return Err(MethodError::invalid_arguments(format!(
            "`{p}`: RFC 8621 §4.1.2 does not allow this form for the {name} field"
        )));
    }
    Ok(Some(HeaderProp {
        property: p.to_string(),
        name: name.to_string(),
        form,
        all,
    }))
}

/// The field's value as written: after the colon, without the final
/// CRLF, NULs dropped, invalid UTF-8 replaced (§4.1.2.1).
fn raw_value(raw: &[u8], h: &Header<'_>) -> String {
    let v = raw
        .get(h.offset_start as usize..h.offset_end as usize)
        .unwrap_or_default();
    let v = v
        .strip_suffix(b"\r\n")
        .or(v.strip_suffix(b"\n"))
        .unwrap_or(v);
    String::from_utf8_lossy(v).replace('\0', "")
}

/// The field's name as written in the message.
fn raw_name(raw: &[u8], h: &Header<'_>) -> String {
    let n = raw
        .get(h.offset_field as usize..h.offset_start as usize)
        .unwrap_or_default();
    let n = n.strip_suffix(b":").unwrap_or(n);
    String::from_utf8_lossy(n).trim_end().to_string()
}

fn email_address(a: &mail_parser::Addr<'_>) -> Value {
    json!({ "name": a.name(), "email": a.address().unwrap_or_default() })
}

/// An address header as EmailAddress[] (§4.1.2.3): groups flattened.
pub fn addresses(a: Option<&Address<'_>>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => Value::Array(a.iter().map(email_address).collect()),
    }
}

fn parsed(bytes: &[u8], form: Form) -> Value {
    let mut s = MessageStream::new(bytes);
    match form {
        Form::Raw => unreachable!("raw is not parsed"),
        Form::Text => match s.parse_unstructured() {
            HeaderValue::Text(t) => json!(t.nfc().collect::<String>()),
            HeaderValue::TextList(l) => json!(l.join(" ").nfc().collect::<String>()),
            _ => json!(""),
        },
        Form::Addresses => match s.parse_address() {
            HeaderValue::Address(a) => addresses(Some(&a)),
            _ => json!([]),
        },
        Form::GroupedAddresses => match s.parse_address() {
            HeaderValue::Address(Address::List(l)) => {
                json!([{ "name": null, "addresses": l.iter().map(email_address).collect::<Vec<_>>() }])
            }
            HeaderValue::Address(Address::Group(groups)) => Value::Array(
                groups
                    .iter()
                    .map(|g| {
                        json!({
                            "name": g.name,
                            "addresses": g.addresses.iter().map(email_address).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
            _ => json!([]),
        },
        Form::MessageIds => match s.parse_id() {
            HeaderValue::Text(t) => json!([t]),
            HeaderValue::TextList(l) => json!(l),
            _ => Value::Null,
        },
        Form::Date => match s.parse_date() {
            HeaderValue::DateTime(d) if d.is_valid() => json!(d.to_rfc3339()),
            _ => Value::Null,
        },
        // RFC 2369: URLs in angle brackets, which parse as addresses.
        Form::Urls => match s.parse_address() {
            HeaderValue::Address(a) => {
                let urls: Vec<&str> = a.iter().filter_map(|x| x.address()).collect();
                if urls.is_empty() {
                    Value::Null
                } else {
                    json!(urls)
                }
            }
            _ => Value::Null,
        },
    }
}

/// The value of a `header:` property over one header block.
pub fn header_prop(raw: &[u8], headers: &[Header<'_>], hp: &HeaderProp) -> Value {
    let values: Vec<Value> = headers
        .iter()
        .filter(|h| raw_name(raw, h).eq_ignore_ascii_case(&hp.name))
        .map(|h| match hp.form {
            Form::Raw => json!(raw_value(raw, h)),
            form => parsed(
                raw.get(h.offset_start as usize..h.offset_end as usize)
                    .unwrap_or_default(),
                form,
            ),
        })
        .collect();
    if hp.all {
        Value::Array(values)
    } else {
        values.into_iter().last().unwrap_or(Value::Null)
    }
}

/// `headers` (§4.1.3): every field, in order, name as written, Raw value.
pub fn header_list(raw: &[u8], headers: &[Header<'_>]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!({ "name": raw_name(raw, h), "value": raw_value(raw, h) }))
            .collect(),
    )
}

/// The EmailBodyPart properties Email/get returns when the client names
/// none (§4.2).
pub const DEFAULT_BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
];

pub(crate) const BODY_PROPERTIES: &[&str] = &[
    "partId",
    "blobId",
    "size",
    "headers",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// The `bodyProperties` argument.
pub fn body_properties(args: &Map<String, Value>) -> Result<Vec<String>, MethodError> {
    let Some(list) = args.get("bodyProperties").filter(|v| !v.is_null()) else {
        return Ok(DEFAULT_BODY_PROPERTIES
            .iter()
            .map(|p| p.to_string())
            .collect());
    };
    let list = list
        .as_array()
        .ok_or_else(|| MethodError::invalid_arguments("bodyProperties must be an array"))?;
    let mut out = Vec::new();
    for p in list {
        let p = p
            .as_str()
            .ok_or_else(|| MethodError::invalid_arguments("bodyProperties must be strings"))?;
        if !BODY_PROPERTIES.contains(&p) && parse_header_prop(p)?.is_none() {
            return Err(MethodError::invalid_arguments(format!(
                "unknown EmailBodyPart property `{p}`"
            )));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

/// A part's media type, lower case, parameters stripped; text/plain
/// when the part has none (RFC 2045 §5.2).
pub fn media_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None if part.is_message() => "message/rfc822".into(),
        None => "text/plain".into(),
    }
}

/// One EmailBodyPart (§4.1.4) of the message whose blob is `blob`.
pub fn body_part(msg: &Message<'_>, index: usize, props: &[String], blob: &str) -> Value {
    let Some(part) = msg.parts.get(index) else {
        return Value::Null;
    };
    let raw = msg.raw_message();
    let kind = media_type(part);
    let multipart = part.is_multipart();
    let mut out = Map::new();
    for p in props {
        let v = match p.as_str() {
            "partId" if multipart => Value::Null,
            "partId" => json!(index.to_string()),
            "blobId" if multipart => Value::Null,
            "blobId" => json!(id::part_blob(blob, index)),
            "size" => json!(part.len()),
            "headers" => header_list(raw, &part.headers),
            "name" => json!(part.attachment_name()),
            "type" => json!(kind),
            "charset" => match part.content_type() {
                None => json!("us-ascii"),
                Some(_) if !kind.starts_with("text/") => Value::Null,
                Some(ct) => json!(ct.attribute("charset").unwrap_or("us-ascii")),
            },
            "disposition" => json!(part
                .content_disposition()
                .map(|d| d.c_type.to_ascii_lowercase())),
            "cid" => json!(part
                .content_id()
                .map(|c| c.trim().trim_start_matches('<').trim_end_matches('>'))),
            "language" => match part.content_language() {
                HeaderValue::Text(t) => json!([t]),
                HeaderValue::TextList(l) => json!(l),
                _ => Value::Null,
            },
            "location" => json!(part.content_location()),
            "subParts" => match part.sub_parts() {
                Some(subs) => Value::Array(
                    subs.iter()
                        .map(|s| body_part(msg, *s as usize, props, blob))
                        .collect(),
                ),
                None => Value::Null,
            },
            other => match parse_header_prop(other) {
                Ok(Some(hp)) => header_prop(raw, &part.headers, &hp),
                _ => continue,
            },
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

/// Which text parts get a bodyValue.
#[derive(Debug, Default, Clone, Copy)]
pub struct ValueOptions {
    pub text: bool,
    pub html: bool,
    pub all: bool,
    /// 0: no truncation.
    pub max_bytes: usize,
}

impl ValueOptions {
    pub fn parse(args: &Map<String, Value>) -> Result<ValueOptions, MethodError> {
        let flag = |name: &str| match args.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| MethodError::invalid_arguments(format!("{name} must be a Boolean"))),
        };
        let max_bytes = match args.get("maxBodyValueBytes") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or_else(|| {
                MethodError::invalid_arguments("maxBodyValueBytes must be an UnsignedInt")
            })? as usize,
        };
        Ok(ValueOptions {
            text: flag("fetchTextBodyValues")?,
            html: flag("fetchHTMLBodyValues")?,
            all: flag("fetchAllBodyValues")?,
            max_bytes,
        })
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary and, for
/// HTML, not inside a tag (§4.2).
fn truncate(s: &str, max: usize, html: bool) -> (String, bool) {
    if max == 0 || s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = &s[..end];
    if html {
        if let Some(open) = cut.rfind('<') {
            if cut[open..].find('>').is_none() {
                cut = &cut[..open];
            }
        }
    }
    (cut.to_string(), true)
}

/// `bodyValues` (§4.1.4): the chosen text/* parts, decoded, CRLF as LF.
pub fn body_values(msg: &Message<'_>, opts: ValueOptions) -> Value {
    let mut chosen: Vec<usize> = Vec::new();
    if opts.all {
        chosen.extend(0..msg.parts.len());
    }
    if opts.text {
        chosen.extend(msg.text_body.iter().map(|i| *i as usize));
    }
    if opts.html {
        chosen.extend(msg.html_body.iter().map(|i| *i as usize));
    }
    let mut out = Map::new();
    for i in chosen {
        let Some(part) = msg.parts.get(i) else {
            continue;
        };
        let kind = media_type(part);
        if !kind.starts_with("text/") || out.contains_key(&i.to_string()) {
            continue;
        }
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            _ => continue,
        };
        let text = text.replace("\r\n", "\n");
        let (value, cut) = truncate(&text, opts.max_bytes, kind == "text/html");
        out.insert(
            i.to_string(),
            json!({
                "value": value,
                "isEncodingProblem": part.is_encoding_problem,
                "isTruncated": cut,
            }),
        );
    }
    Value::Object(out)
}

/// `hasAttachment` (§4.1.4): an attachment not marked inline.
pub fn has_attachment(msg: &Message<'_>) -> bool {
    msg.attachments.iter().any(|i| {
        msg.parts.get(*i as usize).is_some_and(|p| {
            !p.content_disposition()
                .is_some_and(|d| d.c_type.eq_ignore_ascii_case("inline"))
        })
    })
}

/// The body arguments of Email/get and Email/parse (§4.2, §4.9).
pub struct BodyArgs {
    pub props: Vec<String>,
    pub values: ValueOptions,
}

impl BodyArgs {
    pub fn parse(args: &Map<String, Value>) -> Result<BodyArgs, MethodError> {
        Ok(BodyArgs {
            props: body_properties(args)?,
            values: ValueOptions::parse(args)?,
        })
    }
}

fn ids(v: &HeaderValue<'_>) -> Value {
    match v {
        HeaderValue::Text(t) => json!([t]),
        HeaderValue::TextList(l) => json!(l),
        _ => Value::Null,
    }
}

/// An Email property that comes from the message itself (§4.1.2-§4.1.4)
/// for the message whose blob is `blob`; `None` for the others
/// (metadata). `msg` is `None` for a message that does not parse.
pub fn message_property(
    p: &str,
    msg: Option<&Message<'_>>,
    blob: &str,
    args: &BodyArgs,
) -> Result<Option<Value>, MethodError> {
    let v = match p {
        "messageId" => msg.map_or(Value::Null, |m| {
            ids(m.header("Message-ID").unwrap_or(&HeaderValue::Empty))
        }),
        "inReplyTo" => msg.map_or(Value::Null, |m| ids(m.in_reply_to())),
        "references" => msg.map_or(Value::Null, |m| ids(m.references())),
        "subject" => msg
            .and_then(|m| m.subject())
            .map_or(Value::Null, |s| json!(s)),
        "sentAt" => msg
            .and_then(|m| m.date())
            .map_or(Value::Null, |d| json!(d.to_rfc3339())),
        "sender" => addresses(msg.and_then(|m| m.sender())),
        "from" => addresses(msg.and_then(|m| m.from())),
        "to" => addresses(msg.and_then(|m| m.to())),
        "cc" => addresses(msg.and_then(|m| m.cc())),
        "bcc" => addresses(msg.and_then(|m| m.bcc())),
        "replyTo" => addresses(msg.and_then(|m| m.reply_to())),
        "preview" => json!(msg
            .and_then(|m| m.body_preview(256))
            .map(|p| p.to_string())
            .unwrap_or_default()),
        "hasAttachment" => json!(msg.is_some_and(has_attachment)),
        "headers" => match msg {
            Some(m) => header_list(m.raw_message(), &m.parts[0].headers),
            None => json!([]),
        },
        "bodyStructure" => msg.map_or(Value::Null, |m| body_part(m, 0, &args.props, blob)),
        "textBody" | "htmlBody" | "attachments" => match msg {
            Some(m) => {
                let parts = match p {
                    "textBody" => &m.text_body,
                    "htmlBody" => &m.html_body,
                    _ => &m.attachments,
                };
                // §4.1.4: these lists never include subParts.
                let flat: Vec<String> = args
                    .props
                    .iter()
                    .filter(|b| *b != "subParts")
                    .cloned()
                    .collect();
                Value::Array(
                    parts
                        .iter()
                        .map(|i| body_part(m, *i as usize, &flat, blob))
                        .collect(),
                )
            }
            None => json!([]),
        },
        "bodyValues" => msg.map_or(json!({}), |m| body_values(m, args.values)),
        other => match parse_header_prop(other)? {
            Some(hp) => match msg {
                Some(m) => header_prop(m.raw_message(), &m.parts[0].headers, &hp),
                None if hp.all => json!([]),
                None => Value::Null,
            },
            None => return Ok(None),
        },
    };
    Ok(Some(v))
}

/// Whether `raw` starts as an RFC 5322 message does: a header field
/// (`name:` with a name of printable ASCII). mail-parser reads anything;
/// Email/parse and Email/import refuse blobs that are not mail.
pub fn looks_like_message(raw: &[u8]) -> bool {
    let line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    match line.iter().position(|b| *b == b':') {
        Some(n) if n > 0 => line[..n].iter().all(|b| (33..=126).contains(b)),
        _ => false,
    }
}

/// The decoded content of part `index` (its blob), for downloads.
pub fn part_contents(raw: &[u8], index: usize) -> Option<Vec<u8>> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let part = msg.parts.get(index)?;
    (!part.is_multipart()).then(|| part.contents().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: \"James Smythe\" <james@example.com>\r\nTo: Friends: jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?= <john@example.com>;\r\nSubject:  Hello =?UTF-8?Q?w=C3=B6rld?=\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMessage-ID: <a@b>\r\nList-Unsubscribe: <mailto:u@example.com>, <https://example.com/u>\r\nX-Custom: one\r\nx-custom: two\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Language: en, de\r\n\r\nHello\r\nthere\r\n--b1\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <c1@x>\r\n\r\nJVBERi0=\r\n--b1--\r\n";

    fn hp(p: &str) -> HeaderProp {
        parse_header_prop(p).unwrap().unwrap()
    }

    #[test]
    fn header_properties_parse() {
        assert_eq!(parse_header_prop("subject").unwrap(), None);
        let p = hp("header:Resent-To:asAddresses:all");
        assert_eq!(
            (p.name.as_str(), p.form, p.all),
            ("Resent-To", Form::Addresses, true)
        );
        assert_eq!(hp("header:X-Any:asDate").form, Form::Date);
        for bad in [
            "header:",
            "header:From:asNothing",
            "header:From:all:asAddresses",
            "header:From:asAddresses:all:more",
            "header:Subject:asAddresses",
            "header:From:asText",
            "header:Date:asURLs",
            "header:Message-ID:asDate",
        ] {
            assert_eq!(
                parse_header_prop(bad).unwrap_err().kind,
                "invalidArguments",
                "{bad}"
            );
        }
    }

    #[test]
    fn header_forms() {
        let msg = mail_parser::MessageParser::default().parse(MSG).unwrap();
        let h = &msg.parts[0].headers;
        let get = |p: &str| header_prop(MSG, h, &hp(p));
        assert_eq!(
            get("header:subject"),
            json!("  Hello =?UTF-8?Q?w=C3=B6rld?=")
        );
        assert_eq!(get("header:Subject:asText"), json!("Hello wörld"));
        assert_eq!(
            get("header:From:asAddresses"),
            json!([{"name": "James Smythe", "email": "james@example.com"}])
        );
        assert_eq!(
            get("header:To:asGroupedAddresses"),
            json!([{"name": "Friends", "addresses": [
                {"name": null, "email": "jane@example.com"},
                {"name": "John Smîth", "email": "john@example.com"}
            ]}])
        );
        assert_eq!(get("header:To:asAddresses").as_array().unwrap().len(), 2);
        assert_eq!(get("header:Message-ID:asMessageIds"), json!(["a@b"]));
        assert_eq!(
            get("header:Date:asDate"),
            json!("2026-11-27T10:00:00+01:00")
        );
        assert_eq!(
            get("header:List-Unsubscribe:asURLs"),
            json!(["mailto:u@example.com", "https://example.com/u"])
        );
        assert_eq!(get("header:X-Custom:all"), json!([" one", " two"]));
        assert_eq!(get("header:x-custom"), json!(" two"), "the last one");
        assert_eq!(get("header:X-None"), Value::Null);
        assert_eq!(get("header:X-None:all"), json!([]));
        let list = header_list(MSG, h);
        assert_eq!(
            list[0],
            json!({"name": "From", "value": " \"James Smythe\" <james@example.com>"})
        );
        assert_eq!(list[7]["name"], "x-custom");
    }

    #[test]
    fn body_parts_and_values() {
        let msg = mail_parser::MessageParser::default().parse(MSG).unwrap();
        let props: Vec<String> = BODY_PROPERTIES.iter().map(|s| s.to_string()).collect();
        let root = body_part(&msg, 0, &props, "B7");
        assert_eq!(root["type"], "multipart/mixed");
        assert_eq!(root["partId"], Value::Null);
        assert_eq!(root["blobId"], Value::Null);
        let subs = root["subParts"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        let (text, pdf) = (&subs[0], &subs[1]);
        assert_eq!(text["type"], "text/plain");
        assert_eq!(text["charset"], "utf-8");
        assert_eq!(text["language"], json!(["en", "de"]));
        assert_eq!(text["disposition"], Value::Null);
        assert_eq!(pdf["name"], "report.pdf");
        assert_eq!(pdf["disposition"], "attachment");
        assert_eq!(pdf["charset"], Value::Null);
        assert_eq!(pdf["cid"], "c1@x");
        assert_eq!(pdf["size"], 5, "decoded octets");
        let pdf_index: usize = pdf["partId"].as_str().unwrap().parse().unwrap();
        assert_eq!(pdf["blobId"], json!(id::part_blob("B7", pdf_index)));
        assert_eq!(part_contents(MSG, pdf_index).unwrap(), b"%PDF-");
        assert_eq!(part_contents(MSG, 0), None, "multipart has no blob");
        assert!(has_attachment(&msg));
        let values = body_values(
            &msg,
            ValueOptions {
                text: true,
                max_bytes: 8,
                ..Default::default()
            },
        );
        let tid = text["partId"].as_str().unwrap();
        assert_eq!(
            values[tid],
            json!({"value": "Hello\nth", "isEncodingProblem": false, "isTruncated": true})
        );
        assert_eq!(values.as_object().unwrap().len(), 1);
    }

    #[test]
    fn messages_start_with_a_field() {
        assert!(looks_like_message(b"From: a@b\r\n\r\nx"));
        assert!(looks_like_message(MSG));
        assert!(!looks_like_message(b"%PDF-1.4 not mail"));
        assert!(!looks_like_message(b"not mail: really"));
        assert!(!looks_like_message(b": x"));
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("héllo", 2, false), ("h".into(), true));
        assert_eq!(truncate("ab<a href=x>", 6, true), ("ab".into(), true));
        assert_eq!(truncate("ab<b>cd", 6, true), ("ab<b>c".into(), true));
        assert_eq!(truncate("abc", 0, false), ("abc".into(), false));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes: every header form, part and body value is read
        /// without a panic (the jmap_email fuzz target's entry).
        #[test]
        fn any_message_reads_cleanly(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..800)
        ) {
            crate::fuzz_entry::jmap_email(&data);
        }

        /// RFC 8621 §4.1.2.1: asRaw is the value as written after the
        /// colon (folding kept), whatever it holds.
        #[test]
        fn raw_form_is_the_value_as_written(
            name in "X-[A-Za-z]{1,10}",
            value in "[ -~]{0,60}",
            fold in proptest::prelude::any::<bool>(),
        ) {
            let value = if fold { value.replacen(' ', "\r\n ", 1) } else { value };
            let raw = format!("From: a@b.example\r\n{name}: {value}\r\n\r\nbody\r\n");
            crate::fuzz_entry::jmap_email(raw.as_bytes());
            let msg = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
            let hp = parse_header_prop(&format!("header:{name}:asRaw")).unwrap().unwrap();
            let got = header_prop(raw.as_bytes(), msg.root_part().headers(), &hp);
            proptest::prop_assert_eq!(got, Value::String(format!(" {value}")));
        }
    }
}
