//! HTTP hooks (`[[smtp.hook]]`): the message is POSTed as
//! `message/rfc822` with the envelope in `X-Petrel-*` request fields;
//! the hook answers 200 with JSON:
//!
//! ```json
//! {"action": "accept" | "continue" | "reject" | "tempfail" | "discard" | "quarantine",
//!  "reply": "550 5.7.1 text",                  // optional, for reject and tempfail
//!  "headers": [{"name": "X-Hook", "value": "1"}]}  // optional, added
//! ```
//!
//! Any other status, a body that is not such JSON, or no answer within
//! the hook's `timeout` is a failure of the hook.

use std::time::Duration;

use hyper::body::Bytes;
use serde::Deserialize;

use super::{reply_decision, Changes, Decision, HeaderChange, Outcome, Transaction};
use crate::config::HookConfig;
use crate::core::Core;

/// The largest answer read from a hook.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    action: String,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    headers: Vec<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    name: String,
    value: String,
}

pub async fn check(core: &Core, cfg: &HookConfig, tx: &Transaction<'_>) -> Result<Outcome, String> {
    let work = post(core, cfg, tx);
    let body = tokio::time::timeout(Duration::from_secs(cfg.timeout), work)
        .await
        .map_err(|_| "the hook did not answer in time".to_string())??;
    read_answer(&body)
}

/// The hook's answer as an outcome.
pub fn read_answer(body: &[u8]) -> Result<Outcome, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("the hook's answer: {e}"))?;
    let class_reply = |default: &str, class: u8| match answer.reply.as_deref() {
        None => Ok(default.to_string()),
        Some(text) => match reply_decision(text) {
            Some(Decision::Reject(t) | Decision::TempFail(t)) if t.as_bytes()[0] == class => Ok(t),
            _ => Err(format!(
                "the hook's reply {text:?} is not a {}xx reply",
                class as char
            )),
        },
    };
    let mut changes = Changes::default();
    for f in answer.headers {
        let ok_name =
            !f.name.is_empty() && f.name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !ok_name {
            return Err(format!("the hook's header name {:?} is not valid", f.name));
        }
        changes.headers.push(HeaderChange::Add {
            name: f.name,
            value: f.value,
        });
    }
    let decision = match answer.action.as_str() {
        "accept" => Decision::Accept,
        "continue" => Decision::Continue,
        "discard" => Decision::Discard,
        "quarantine" => {
            changes.quarantine = Some("hook".into());
            Decision::Continue
        }
        "reject" => Decision::Reject(class_reply("550 5.7.1 Message refused by a filter", b'5')?),
        "tempfail" => Decision::TempFail(class_reply(
            "451 4.7.1 Message deferred by a filter, try again later",
            b'4',
        )?),
        other => return Err(format!("the hook's action {other:?} is not known")),
    };
    Ok(Outcome { decision, changes })
}

async fn post(core: &Core, cfg: &HookConfig, tx: &Transaction<'_>) -> Result<Bytes, String> {
    let mut headers = vec![
        ("Content-Type", "message/rfc822".to_string()),
        ("X-Petrel-Queue-Id", tx.queue_id.clone()),
        ("X-Petrel-Client-Address", tx.client_ip.to_string()),
        ("X-Petrel-Helo", tx.helo.to_string()),
        ("X-Petrel-Mail-From", tx.from.to_string()),
    ];
    headers.extend(tx.rcpts.iter().map(|r| ("X-Petrel-Rcpt-To", r.to_string())));
    if let Some(login) = tx.login {
        headers.push(("X-Petrel-Login", login.to_string()));
    }
    let tls = crate::queue::mta_sts::verified_tls(core).ok();
    let body = Bytes::copy_from_slice(tx.message);
    let a = crate::net::http_client::exchange(
        tls,
        hyper::Method::POST,
        &cfg.url,
        &headers,
        body,
        MAX_ANSWER,
    )
    .await?;
    if a.status != hyper::StatusCode::OK {
        return Err(format!("the hook answered {}", a.status));
    }
    Ok(a.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let o = read_answer(br#"{"action":"reject","reply":"554 5.7.1 no thanks"}"#).unwrap();
        assert_eq!(o.decision, Decision::Reject("554 5.7.1 no thanks".into()));
        let o = read_answer(br#"{"action":"tempfail"}"#).unwrap();
        assert!(matches!(o.decision, Decision::TempFail(t) if t.starts_with("451 4.7.1")));
        let o =
            read_answer(br#"{"action":"quarantine","headers":[{"name":"X-Hook","value":"seen"}]}"#)
                .unwrap();
        assert_eq!(o.decision, Decision::Continue);
        assert!(o.changes.quarantine.is_some());
        assert_eq!(o.changes.headers.len(), 1);
        // A reply of the wrong class, an unknown action, a bad name.
        assert!(read_answer(br#"{"action":"reject","reply":"451 4.7.1 x"}"#).is_err());
        assert!(read_answer(br#"{"action":"maybe"}"#).is_err());
        assert!(
            read_answer(br#"{"action":"accept","headers":[{"name":"A: b","value":""}]}"#).is_err()
        );
        assert!(read_answer(b"not json").is_err());
    }
}
