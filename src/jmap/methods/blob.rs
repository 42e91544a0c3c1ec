//! Blob management (RFC 9404): Blob/upload (a blob made of text, base64
//! and pieces of other blobs), Blob/get (the content as text or base64,
//! a range of it, its size and digests) and Blob/lookup (which Emails,
//! Threads and Mailboxes refer to a blob). Blobs are the account's own
//! (uploads, messages, their parts: `crate::jmap::blob`).

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::{store_error, Context};
use crate::jmap::id::{self, BlobRef};
use crate::jmap::request::MethodError;

/// The capability's limits (the session's urn:ietf:params:jmap:blob).
pub const MAX_DATA_SOURCES: usize = 64;

fn invalid(p: &str, why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": [p], "description": why.into()})
}

pub async fn upload(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let (create, _, _) = super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let max = cx.core.config.jmap.max_size_upload;
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, obj) in &create {
        let parts = obj
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if parts.is_empty() || parts.len() > MAX_DATA_SOURCES {
            not_created.insert(
                cid.clone(),
                invalid("data", format!("1 to {MAX_DATA_SOURCES} data sources")),
            );
            continue;
        }
        let mut data = Vec::new();
        let mut err = None;
        for p in &parts {
            if let Some(t) = p.get("data:asText").and_then(Value::as_str) {
                data.extend_from_slice(t.as_bytes());
            } else if let Some(b) = p.get("data:asBase64").and_then(Value::as_str) {
                match base64::engine::general_purpose::STANDARD.decode(b) {
                    Ok(d) => data.extend(d),
                    Err(_) => err = Some(invalid("data", "bad base64")),
                }
            } else if let Some(b) = p.get("blobId").and_then(Value::as_str) {
                let b = cx.resolve(b).unwrap_or_else(|| b.to_string());
                match cx.read_blob(&super::Access::own(acct), &b).await? {
                    Some(d) => {
                        let off = p.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
                        let len = p.get("length").and_then(Value::as_u64).map(|l| l as usize);
                        let end = len.map_or(d.len(), |l| off.saturating_add(l));
                        // RFC 9404 §4.1: a range past the end is an error.
                        if off > d.len() || end > d.len() {
                            err = Some(invalid(
                                "data",
                                format!("{b}: offset and length go past its end"),
                            ));
                        } else {
                            data.extend_from_slice(&d[off..end]);
                        }
                    }
                    None => err = Some(json!({"type": "blobNotFound", "notFound": [b]})),
                }
            } else {
                err = Some(invalid(
                    "data",
                    "each source is data:asText, data:asBase64 or blobId",
                ));
            }
            if data.len() > max {
                err = Some(json!({"type": "tooLarge", "maxSize": max}));
            }
            if err.is_some() {
                break;
            }
        }
        if let Some(e) = err {
            not_created.insert(cid.clone(), e);
            continue;
        }
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        let (n, up) = crate::jmap::blob::store(cx.core, acct, kind, data)
            .await
            .map_err(store_error)?;
        cx.created(cid, &id::upload(n));
        created.insert(
            cid.clone(),
            json!({"id": id::upload(n), "type": up.kind, "size": up.size}),
        );
    }
    Ok(json!({
        "accountId": id::account(acct),
        "created": super::or_null(created),
        "notCreated": super::or_null(not_created),
    }))
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let wanted = super::mailbox::ids(cx, &args)?
        .ok_or_else(|| MethodError::invalid_arguments("Blob/get needs ids"))?;
    let props: Vec<String> = match args.get("properties") {
        None | Some(Value::Null) => vec!["data".into(), "size".into()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(_) => {
            return Err(MethodError::invalid_arguments(
                "properties must be an array",
            ))
        }
    };
    for p in &props {
        if ![
            "data",
            "data:asText",
            "data:asBase64",
            "size",
            "digest:sha",
            "digest:sha-256",
            "id",
        ]
        .contains(&p.as_str())
        {
            return Err(MethodError::invalid_arguments(format!(
                "unknown Blob property `{p}`"
            )));
        }
    }
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let length = args
        .get("length")
        .and_then(Value::as_u64)
        .map(|l| l as usize);
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for w in wanted {
        let b = cx.resolve(&w).unwrap_or_else(|| w.clone());
        let Some(d) = cx.read_blob(&super::Access::own(acct), &b).await? else {
            not_found.push(w);
            continue;
        };
        let start = offset.min(d.len());
        let end = length.map_or(d.len(), |l| start.saturating_add(l).min(d.len()));
        let range = &d[start..end];
        // RFC 9404 §4.2: truncated when the range asked goes past the end.
        let truncated = offset > d.len() || length.is_some_and(|l| offset + l > d.len());
        let mut o = Map::new();
        o.insert("id".into(), json!(w));
        for p in &props {
            match p.as_str() {
                "data" | "data:asText" | "data:asBase64" => {
                    let text = std::str::from_utf8(range).ok();
                    if p == "data:asText" || (p == "data" && text.is_some()) {
                        o.insert("data:asText".into(), json!(text));
                        if text.is_none() {
                            o.insert("isEncodingProblem".into(), json!(true));
                        }
                    } else {
                        o.insert(
                            "data:asBase64".into(),
                            json!(base64::engine::general_purpose::STANDARD.encode(range)),
                        );
                    }
                }
                "size" => {
                    o.insert("size".into(), json!(d.len()));
                }
                "digest:sha" => {
                    o.insert(
                        p.clone(),
                        json!(base64::engine::general_purpose::STANDARD
                            .encode(sha1::Sha1::digest(range))),
                    );
                }
                "digest:sha-256" => {
                    o.insert(
                        p.clone(),
                        json!(base64::engine::general_purpose::STANDARD
                            .encode(sha2::Sha256::digest(range))),
                    );
                }
                _ => {}
            }
        }
        if truncated {
            o.insert("isTruncated".into(), json!(true));
        }
        list.push(Value::Object(o));
    }
    Ok(json!({"accountId": id::account(acct), "list": list, "notFound": not_found}))
}

/// Blob/lookup: the Emails, Threads and Mailboxes a blob belongs to.
pub async fn lookup(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let types: Vec<String> = args
        .get("typeNames")
        .and_then(Value::as_array)
        .ok_or_else(|| MethodError::invalid_arguments("typeNames is required"))?
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if let Some(t) = types
        .iter()
        .find(|t| !["Email", "Thread", "Mailbox"].contains(&t.as_str()))
    {
        return Err(MethodError::with(
            "unknownDataType",
            format!("`{t}` is not a type blobs belong to"),
        ));
    }
    let ids: Vec<String> = args
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| MethodError::invalid_arguments("ids is required"))?
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let mail = &cx.core.mail;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for b in ids {
        let email = match id::parse_blob(&b) {
            Some(BlobRef::Message(e)) | Some(BlobRef::Part(e, _)) => Some(e),
            Some(BlobRef::Upload(n)) | Some(BlobRef::UploadPart(n, _)) => {
                // An upload belongs to nothing; it exists or not.
                if mail.upload(acct, n).await.map_err(store_error)?.is_none() {
                    not_found.push(b);
                    continue;
                }
                None
            }
            Some(BlobRef::Script(..)) => {
                // A script's text is in no Email, Thread or Mailbox.
                let own = super::Access::own(acct);
                if cx.read_blob(&own, &b).await?.is_none() {
                    not_found.push(b);
                    continue;
                }
                None
            }
            None => {
                not_found.push(b);
                continue;
            }
        };
        let mut matched = Map::new();
        for t in &types {
            matched.insert(t.clone(), json!([]));
        }
        if let Some(e) = email {
            let (Some(meta), Some(st)) = (
                mail.email_meta(acct, e).await.map_err(store_error)?,
                mail.email_state(acct, e).await.map_err(store_error)?,
            ) else {
                not_found.push(b);
                continue;
            };
            if !super::visible(&st) || cx.read_blob(&super::Access::own(acct), &b).await?.is_none()
            {
                not_found.push(b);
                continue;
            }
            for t in &types {
                let v = match t.as_str() {
                    "Email" => json!([id::email(e)]),
                    "Thread" => json!([id::thread(meta.thread)]),
                    _ => json!(st
                        .mailboxes
                        .iter()
                        .map(|(m, _)| id::mailbox(*m))
                        .collect::<Vec<_>>()),
                };
                matched.insert(t.clone(), v);
            }
        }
        list.push(json!({"id": b, "matchedIds": matched}));
    }
    Ok(json!({"accountId": id::account(acct), "list": list, "notFound": not_found}))
}
