//! `petrel dns records|check DOMAIN`: the records a hosted domain needs,
//! and what the resolver sees of them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{Admin, ApiError, ApiResult, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dns/records/{domain}", get(records))
        .route("/api/dns/check/{domain}", get(check))
}

async fn hosted(st: &AppState, domain: &str) -> ApiResult<String> {
    let domain = crate::directory::normalize_domain(domain)?;
    if !st.core.directory.is_local_domain(&domain).await? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "{domain} is not a domain of this server: `petrel domain create {domain}` first"
            ),
        ));
    }
    Ok(domain)
}

async fn records(
    State(st): State<AppState>,
    _a: Admin,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let domain = hosted(&st, &domain).await?;
    let key = crate::dkim::get(&st.core.store, &domain).await?;
    let id = key
        .as_ref()
        .map_or_else(crate::core::unix_now, |k| k.created);
    let records = crate::dns::advice::records(
        &domain,
        &crate::core::Endpoints::of(&st.core),
        key.as_ref(),
        id,
    );
    Ok(Json(json!({ "domain": domain, "records": records })))
}

async fn check(
    State(st): State<AppState>,
    _a: Admin,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let domain = hosted(&st, &domain).await?;
    let findings = crate::dns::check::check(&st.core, &domain)
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let problems = findings
        .iter()
        .filter(|f| {
            matches!(
                f.status,
                crate::dns::check::Status::Wrong | crate::dns::check::Status::Missing
            )
        })
        .count();
    tracing::info!(%domain, problems, "dns check");
    Ok(Json(
        json!({ "domain": domain, "problems": problems, "findings": findings }),
    ))
}
