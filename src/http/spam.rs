//! The spam filter in the management API (administrators), what `petrel
//! spam` calls:
//!
//! * `GET /api/spam` — the settings, each rule with its score (configured
//!   or built in), what the server's database has learnt and what each
//!   phishing feed holds;
//! * `POST /api/spam/learn` — `{"message": BASE64, "spam": bool,
//!   "account": ADDRESS?}` learns a message for the server (and the
//!   account);
//! * `POST /api/spam/classify` — `{"message": BASE64, "account":
//!   ADDRESS?}` scores a message as delivery would (no sender checks:
//!   their results are read from its Authentication-Results field from
//!   this server, if it has one) and lists the rules that fired;
//! * `GET /api/spam/reputation` — every sender's reputation now (its
//!   faded message count, mean score and what it adds), worst first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Admin, ApiError, ApiResult, AppState};
use crate::spam::db::{Learnt, GLOBAL};
use crate::spam::rules::{self, Context};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/spam", get(status))
        .route("/api/spam/learn", post(learn))
        .route("/api/spam/classify", post(classify))
        .route("/api/spam/reputation", get(reputation))
}

async fn reputation(State(st): State<AppState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let f = &st.core.spam;
    let cfg = &f.config().reputation;
    let rows = f.reputations(crate::core::unix_now()).await?;
    let senders: Vec<Value> = rows
        .iter()
        .map(|(who, r)| {
            json!({
                "sender": who,
                "messages": (r.count * 100.0).round() / 100.0,
                "mean_score": (r.sum / r.count.max(f64::MIN_POSITIVE) * 100.0).round() / 100.0,
                "adds": crate::spam::reputation::contribution(r, cfg).unwrap_or(0.0),
            })
        })
        .collect();
    Ok(Json(json!({
        "enable": cfg.enable,
        "min_messages": cfg.min_messages,
        "senders": senders,
    })))
}

async fn status(State(st): State<AppState>, _admin: Admin) -> ApiResult<Json<Value>> {
    let f = &st.core.spam;
    let cfg = f.config();
    let (spam, ham) = f.db.totals(GLOBAL).await?;
    let rules: Vec<Value> = rules::all()
        .map(|r| {
            json!({
                "id": r.id,
                "score": f.score_of(r.id),
                "default": r.score,
                "description": r.description,
            })
        })
        .collect();
    let feeds: Vec<Value> = f
        .feeds
        .configured()
        .iter()
        .map(|c| {
            let list = f.feeds.list(&c.name);
            json!({
                "name": c.name,
                "url": c.url,
                "urls": list.as_ref().map_or(0, |l| l.urls.len()),
                "hosts": list.as_ref().map_or(0, |l| l.hosts.len()),
                "fetched": list.as_ref().map_or(0, |l| l.fetched),
            })
        })
        .collect();
    Ok(Json(json!({
        "enable": cfg.enable,
        "feeds": feeds,
        "junk_score": cfg.junk_score,
        "reject_score": cfg.reject_score,
        "bayes": {
            "enable": cfg.bayes.enable,
            "min_learns": cfg.bayes.min_learns,
            "learn_from_users": cfg.bayes.learn_from_users,
            "spam_learnt": spam,
            "ham_learnt": ham,
        },
        "rules": rules,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LearnBody {
    message: String,
    spam: bool,
    account: Option<String>,
}

fn decode(message: &str) -> ApiResult<Vec<u8>> {
    crate::directory::sasl::b64_decode(message).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "`message` must be the message in base64".into(),
        )
    })
}

async fn account(st: &AppState, addr: Option<&str>) -> ApiResult<Option<u32>> {
    match addr {
        Some(a) => super::sieve::account(st, a).await.map(Some),
        None => Ok(None),
    }
}

async fn learn(
    State(st): State<AppState>,
    _admin: Admin,
    Json(b): Json<LearnBody>,
) -> ApiResult<Json<Value>> {
    let raw = decode(&b.message)?;
    let acct = account(&st, b.account.as_deref()).await?;
    let out = st.core.spam.learn(&raw, acct, None, b.spam).await?;
    let (spam, ham) = st.core.spam.db.totals(acct.unwrap_or(GLOBAL)).await?;
    Ok(Json(json!({
        "learnt": out == Learnt::Done,
        "spam_learnt": spam,
        "ham_learnt": ham,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyBody {
    message: String,
    account: Option<String>,
}

/// The Authentication-Results field this server wrote on `raw`, if any.
fn own_auth_results(raw: &[u8], hostname: &str) -> String {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return String::new();
    };
    msg.header_raw("Authentication-Results")
        .filter(|v| {
            v.trim_start()
                .split(';')
                .next()
                .is_some_and(|id| id.trim().eq_ignore_ascii_case(hostname))
        })
        .map(|v| format!("Authentication-Results:{v}"))
        .unwrap_or_default()
}

async fn classify(
    State(st): State<AppState>,
    _admin: Admin,
    Json(b): Json<ClassifyBody>,
) -> ApiResult<Json<Value>> {
    let raw = crate::spam::filter::strip_headers_owned(decode(&b.message)?);
    let acct = account(&st, b.account.as_deref()).await?;
    let auth = own_auth_results(&raw, &st.core.config.hostname);
    let ctx = Context {
        auth_results: &auth,
        now: crate::core::unix_now(),
        ..Default::default()
    };
    let r = st.core.spam.classify(&raw, &ctx, acct).await?;
    let hits: Vec<Value> = r
        .hits
        .iter()
        .map(|(id, score)| {
            json!({
                "id": id,
                "score": score,
                "description": match rules::find(id) {
                    Some(r) => r.description.to_string(),
                    None => r
                        .listed
                        .iter()
                        .find(|(l, _)| l == id)
                        .map(|(_, what)| format!("DNS blocklist lists {what}"))
                        .unwrap_or_default(),
                },
            })
        })
        .collect();
    Ok(Json(json!({
        "score": r.score,
        "required": r.required,
        "verdict": match r.verdict {
            crate::spam::Verdict::Ham => "ham",
            crate::spam::Verdict::Junk => "junk",
            crate::spam::Verdict::Reject => "reject",
        },
        "bayes": r.bayes,
        "bayes_database": r.bayes_scope.map(|s| if s == GLOBAL { "server" } else { "account" }),
        "rules": hits,
    })))
}
