//! `/metrics` (Prometheus text format) and `/api/status` (what
//! `petrel status` prints): the figures an operator watches.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{Admin, ApiResult, AppState};
use crate::core::Core;

/// Index changes counted at most, per scrape.
const BACKLOG_CAP: usize = 100_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/api/status", get(status))
}

/// The figures both endpoints share, read from the store.
struct Figures {
    queued: usize,
    oldest_age: Option<i64>,
    backlog: Option<usize>,
}

async fn figures(core: &Core) -> ApiResult<Figures> {
    let (queued, oldest) = core.queue.stats().await?;
    let backlog = match core.mail.fts {
        Some(_) => Some(core.mail.fts_waiting(BACKLOG_CAP).await?),
        None => None,
    };
    Ok(Figures {
        queued,
        oldest_age: oldest.map(|t| (crate::core::unix_now() - t).max(0)),
        backlog,
    })
}

async fn scrape(
    State(st): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let core = &st.core;
    let Some(handle) = crate::observe::metrics::handle().filter(|_| core.config.metrics.enable)
    else {
        return super::ApiError(
            StatusCode::NOT_FOUND,
            "metrics are off: set metrics.enable = true".into(),
        )
        .into_response();
    };
    let ip: Option<IpAddr> = ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let allowed = ip.is_some_and(|ip| {
        core.config
            .metrics
            .allowed_networks
            .iter()
            .filter_map(|c| c.parse::<crate::net::limit::Cidr>().ok())
            .any(|c| c.contains(ip))
    });
    if !allowed {
        if let Err(e) = super::require_admin(core, &headers, ip).await {
            return e.into_response();
        }
    }
    let f = match figures(core).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    metrics::gauge!("petrel_queue_messages").set(f.queued as f64);
    metrics::gauge!("petrel_queue_oldest_seconds").set(f.oldest_age.unwrap_or(0) as f64);
    metrics::gauge!("petrel_fts_backlog").set(f.backlog.unwrap_or(0) as f64);
    metrics::gauge!("petrel_lockouts").set(core.directory.guard.lockouts().len() as f64);
    metrics::gauge!("petrel_uptime_seconds").set(core.started.elapsed().as_secs_f64());
    metrics::gauge!("petrel_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Version, uptime, listeners, queue and index: `petrel status`.
async fn status(State(st): State<AppState>, _a: Admin) -> ApiResult<Json<Value>> {
    let core = &st.core;
    let f = figures(core).await?;
    let listeners: Vec<Value> = core
        .listeners
        .get()
        .map(|l| {
            l.iter()
                .map(|(p, a)| json!({ "protocol": p, "address": a.to_string() }))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": core.config.hostname,
        "uptime": core.started.elapsed().as_secs(),
        "store": core.store.backend_name(),
        "listeners": listeners,
        "queue": {
            "messages": f.queued,
            "oldest_age": f.oldest_age,
            "worker_idle": core.queue.worker_idle(),
        },
        "index": {
            "enabled": f.backlog.is_some(),
            "waiting": f.backlog,
        },
        "lockouts": core.directory.guard.lockouts().len(),
        "metrics": crate::observe::metrics::handle().is_some() && core.config.metrics.enable,
    })))
}
