//! `GET /api/assessment`, `/api/assessment/report` and `/api/hotspots`:
//! the command centre's figures (src/assess.rs). The centre's: a
//! department's scoped token is refused.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::auth::authorize;
use super::{ApiError, AppState};
use crate::assess::{self, Ask};
use crate::settings::Role;

type ApiResult = Result<Response, ApiError>;

/// The longest period the API computes on request (the CLI computes any):
/// a request of the hub's process stays a month's or a year's work.
const LONGEST_DAYS: i64 = 366;

/// The period asked for, within [`LONGEST_DAYS`].
fn period(ask: &Ask, now: chrono::DateTime<Utc>) -> Result<crate::assessment::Period, ApiError> {
    let period = ask.period(now).map_err(bad)?;
    if (period.to - period.from).num_days() >= LONGEST_DAYS {
        return Err(bad(format!(
            "a period of at most {LONGEST_DAYS} days here (gridhub assess computes longer ones)"
        )));
    }
    Ok(period)
}

/// The period, the rows, and for the report its format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    by: Option<String>,
    /// The report's: csv (default) or html.
    format: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// A viewer of the whole district; with what the assessment needs.
fn centre<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<(Arc<crate::assessment::Config>, &'a crate::store::Rules), ApiError> {
    let caller = authorize(state, headers, Role::Viewer)?;
    if caller.scope.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the assessment is the district centre's: a department's token does not read it",
        ));
    }
    match (&state.assessment, &state.desk) {
        (Some(config), Some(rules)) => Ok((config.clone(), rules)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this hub serves no assessment",
        )),
    }
}

async fn compute(
    state: &AppState,
    headers: &HeaderMap,
    query: &AssessQuery,
) -> Result<assess::Assessment, ApiError> {
    let (config, rules) = centre(state, headers)?;
    let now = Utc::now();
    let ask = Ask {
        from: query.from,
        to: query.to,
        by: query.by.clone(),
    };
    let period = period(&ask, now)?;
    let by = ask.by().map_err(bad)?;
    Ok(assess::assess(state.ops.store(), &config, &rules.routing, period, by, now).await?)
}

pub async fn assessment(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<AssessQuery>,
) -> ApiResult {
    if query.format.is_some() {
        return Err(bad("format is for GET /api/assessment/report"));
    }
    let assessment = compute(&state, &headers, &query).await?;
    Ok(Json(assessment).into_response())
}

/// The monthly report file: CSV, or a printable HTML page.
pub async fn assessment_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<AssessQuery>,
) -> ApiResult {
    let format = query.format.as_deref().unwrap_or("csv");
    if !matches!(format, "csv" | "html") {
        return Err(bad("format: csv or html"));
    }
    let assessment = compute(&state, &headers, &query).await?;
    let name = format!(
        "gridhub-assessment-{}-{}-{}.{format}",
        assessment.period.from,
        assessment.period.to,
        assessment.by.as_str()
    );
    let (body, content_type) = if format == "csv" {
        let csv = assessment
            .to_csv()
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        (csv, "text/csv; charset=utf-8")
    } else {
        (
            assessment.to_html().into_bytes(),
            "text/html; charset=utf-8",
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

pub async fn hotspots(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<AssessQuery>,
) -> ApiResult {
    centre(&state, &headers)?;
    if query.format.is_some() {
        return Err(bad("format is for GET /api/assessment/report"));
    }
    let ask = Ask {
        from: query.from,
        to: query.to,
        by: None,
    };
    let period = period(&ask, Utc::now())?;
    let report = assess::hotspots(state.ops.store(), period, query.by.as_deref())
        .await?
        .map_err(bad)?;
    Ok(Json(report).into_response())
}
