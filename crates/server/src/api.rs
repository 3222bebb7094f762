//! The `/api/v1` handlers, the route table, query validation, metrics and the live stream.
//!
//! The router is built only from [`routes`], and the OpenAPI test compares that table with
//! the document both ways, so the two cannot drift apart.

use crate::aggregate::aggregate;
use crate::backend::{Backend, Direction, EventQuery, IncidentQuery};
use crate::error::ApiError;
use crate::types::{Health, Severity};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Json;
use causeway_model::timefmt::Timestamp;
use causeway_model::Kind;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Longest text filter or id accepted.
const MAX_TEXT: usize = 1024;
/// Default node budget of an incident graph or a trace before the server aggregates.
pub const DEFAULT_MAX_NODES: usize = 400;

/// Every route: path (OpenAPI templating, which axum 0.8 shares) and its handlers.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(crate::http::index)),
        ("/metrics", get(metrics)),
        ("/api/v1/openapi.json", get(openapi)),
        ("/api/v1/incidents", get(list_incidents)),
        ("/api/v1/incidents/{id}", get(get_incident)),
        ("/api/v1/events", get(list_events)),
        ("/api/v1/processes/{id}", get(get_process)),
        ("/api/v1/processes/{id}/trace", get(get_trace)),
        ("/api/v1/health", get(get_health)),
        ("/api/v1/rules", get(list_rules)),
        ("/api/v1/policies", get(list_policies)),
        ("/api/v1/stream", get(stream)),
    ]
}

/// `Query<T>` whose rejection is our JSON 400.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                e.body_text()
            ))),
        }
    }
}

/// A path id; axum's rejection (bad percent-encoding) becomes our JSON 404.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if !id.is_empty() && id.len() <= MAX_TEXT => Ok(Id(id)),
            _ => Err(ApiError::not_found("not found")),
        }
    }
}

/// Run a backend call on the blocking pool.
async fn call<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Backend) -> Result<T, crate::backend::BackendError> + Send + 'static,
{
    let backend = Arc::clone(&state.backend);
    match tokio::task::spawn_blocking(move || f(backend.as_ref())).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "backend task failed");
            Err(ApiError::internal())
        }
    }
}

fn int<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    v: Option<&str>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ApiError> {
    let Some(s) = v else { return Ok(default) };
    match s.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be an integer from {min} to {max}"
        ))),
    }
}

fn text(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.len() > MAX_TEXT => Err(ApiError::bad_request(format!(
            "{name} is longer than {MAX_TEXT} bytes"
        ))),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn time(name: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => Timestamp::parse_rfc3339(s)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name} must be an RFC 3339 time"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct IncidentParams {
    limit: Option<String>,
    offset: Option<String>,
    severity: Option<String>,
    min_score: Option<String>,
    host: Option<String>,
    technique: Option<String>,
    q: Option<String>,
}

async fn list_incidents(
    State(state): State<AppState>,
    Q(p): Q<IncidentParams>,
) -> Result<Response, ApiError> {
    let severity = match p.severity.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Severity::parse(s).ok_or_else(|| {
            ApiError::bad_request("severity must be one of info, low, medium, high, critical")
        })?),
    };
    let min_score = match p.min_score.as_deref() {
        None | Some("") => None,
        Some(s) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => return Err(ApiError::bad_request("min_score must be a number")),
        },
    };
    let query = IncidentQuery {
        limit: int("limit", p.limit.as_deref(), 100u32, 1, 1000)?,
        offset: int("offset", p.offset.as_deref(), 0u64, 0, 1_000_000)?,
        severity,
        min_score,
        host: text("host", p.host)?,
        technique: text("technique", p.technique)?,
        q: text("q", p.q)?,
    };
    let page = call(&state, move |b| b.incidents(&query)).await?;
    Ok(Json(page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct GraphParams {
    max_nodes: Option<String>,
    collapse: Option<String>,
}

fn max_nodes(v: Option<&str>) -> Result<usize, ApiError> {
    int("max_nodes", v, DEFAULT_MAX_NODES, 10, 20_000)
}

fn collapse(v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("") | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ApiError::bad_request("collapse must be true or false")),
    }
}

async fn get_incident(
    State(state): State<AppState>,
    Id(id): Id,
    Q(p): Q<GraphParams>,
) -> Result<Response, ApiError> {
    let max = max_nodes(p.max_nodes.as_deref())?;
    let collapse = collapse(p.collapse.as_deref())?;
    let found = call(&state, move |b| b.incident(&id)).await?;
    let mut detail = found.ok_or_else(|| ApiError::not_found("no such incident"))?;
    detail.trace = aggregate(detail.trace, max, collapse);
    Ok(Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    kind: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    host: Option<String>,
    container: Option<String>,
    process: Option<String>,
    limit: Option<String>,
}

async fn list_events(
    State(state): State<AppState>,
    Q(p): Q<EventParams>,
) -> Result<Response, ApiError> {
    let mut kinds = Vec::new();
    for k in p.kind.as_deref().unwrap_or("").split(',') {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        kinds.push(
            Kind::parse(k).ok_or_else(|| ApiError::bad_request(format!("unknown kind {k:?}")))?,
        );
    }
    let query = EventQuery {
        kinds,
        since: time("since", p.since.as_deref())?,
        until: time("until", p.until.as_deref())?,
        host: text("host", p.host)?,
        container: text("container", p.container)?,
        process: text("process", p.process)?,
        q: text("q", p.q)?,
        limit: int("limit", p.limit.as_deref(), 100u32, 1, 10_000)?,
    };
    let events = call(&state, move |b| b.events(&query)).await?;
    Ok(Json(events).into_response())
}

async fn get_process(State(state): State<AppState>, Id(id): Id) -> Result<Response, ApiError> {
    let found = call(&state, move |b| b.process(&id)).await?;
    let detail = found.ok_or_else(|| ApiError::not_found("no such process"))?;
    Ok(Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TraceParams {
    direction: Option<String>,
    depth: Option<String>,
    max_nodes: Option<String>,
    collapse: Option<String>,
}

async fn get_trace(
    State(state): State<AppState>,
    Id(id): Id,
    Q(p): Q<TraceParams>,
) -> Result<Response, ApiError> {
    let direction = match p.direction.as_deref() {
        None | Some("") => Direction::Backward,
        Some(s) => Direction::parse(s)
            .ok_or_else(|| ApiError::bad_request("direction must be backward or forward"))?,
    };
    let depth = int("depth", p.depth.as_deref(), 3u32, 1, 64)?;
    let max = max_nodes(p.max_nodes.as_deref())?;
    let collapse = collapse(p.collapse.as_deref())?;
    let found = call(&state, move |b| b.trace(&id, direction, depth)).await?;
    let trace = found.ok_or_else(|| ApiError::not_found("no such process"))?;
    Ok(Json(aggregate(trace, max, collapse)).into_response())
}

async fn get_health(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(call(&state, |b| b.health()).await?).into_response())
}

async fn list_rules(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(call(&state, |b| b.rules()).await?).into_response())
}

async fn list_policies(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(call(&state, |b| b.policies()).await?).into_response())
}

async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

/// Escape a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition of the health counters.
pub fn render_metrics(h: &Health) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP causeway_events_seen_total Events seen by all agents."
    );
    let _ = writeln!(s, "# TYPE causeway_events_seen_total counter");
    let _ = writeln!(s, "causeway_events_seen_total {}", h.events_seen);
    let _ = writeln!(
        s,
        "# HELP causeway_events_lost_total Events lost, per cause."
    );
    let _ = writeln!(s, "# TYPE causeway_events_lost_total counter");
    for (cause, n) in &h.events_lost {
        let _ = writeln!(
            s,
            "causeway_events_lost_total{{cause=\"{}\"}} {n}",
            label(cause)
        );
    }
    let _ = writeln!(
        s,
        "# HELP causeway_agent_events_seen_total Events seen, per agent."
    );
    let _ = writeln!(s, "# TYPE causeway_agent_events_seen_total counter");
    for a in &h.agents {
        let _ = writeln!(
            s,
            "causeway_agent_events_seen_total{{host=\"{}\"}} {}",
            label(&a.host),
            a.events_seen
        );
    }
    let _ = writeln!(
        s,
        "# HELP causeway_agent_events_lost_total Events lost, per agent and cause."
    );
    let _ = writeln!(s, "# TYPE causeway_agent_events_lost_total counter");
    for a in &h.agents {
        for (cause, n) in &a.events_lost {
            let _ = writeln!(
                s,
                "causeway_agent_events_lost_total{{host=\"{}\",cause=\"{}\"}} {n}",
                label(&a.host),
                label(cause)
            );
        }
    }
    let _ = writeln!(s, "# HELP causeway_agent_up 1 when the agent is running.");
    let _ = writeln!(s, "# TYPE causeway_agent_up gauge");
    for a in &h.agents {
        let up = u8::from(a.state == "running");
        let _ = writeln!(
            s,
            "causeway_agent_up{{host=\"{}\",state=\"{}\"}} {up}",
            label(&a.host),
            label(&a.state)
        );
    }
    let _ = writeln!(s, "# HELP causeway_incidents Incidents known.");
    let _ = writeln!(s, "# TYPE causeway_incidents gauge");
    let _ = writeln!(s, "causeway_incidents {}", h.incidents);
    let _ = writeln!(
        s,
        "# HELP causeway_uptime_seconds Seconds since the backend started."
    );
    let _ = writeln!(s, "# TYPE causeway_uptime_seconds gauge");
    let _ = writeln!(s, "causeway_uptime_seconds {}", h.uptime_seconds);
    s
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let h = call(&state, |b| b.health()).await?;
    let more = call(&state, |b| b.metrics()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&h) + &more,
    )
        .into_response())
}

/// `GET /api/v1/stream`: server-sent events. `ready` once, then `incident` per update
/// (an [`crate::types::IncidentUpdate`]), and `lagged` when this client fell behind and
/// should reload the list. Requires `Accept: text/event-stream`: a plain GET (a crawler, a
/// fuzzer) gets a 406 instead of a response that never ends.
async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wants_sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !wants_sse {
        return ApiError {
            status: StatusCode::NOT_ACCEPTABLE,
            message: "this endpoint streams server-sent events: send Accept: text/event-stream"
                .into(),
        }
        .into_response();
    }
    let rx = state.backend.subscribe();
    let ready = futures_util::stream::once(async {
        Ok::<_, Infallible>(SseEvent::default().event("ready").data("{}"))
    });
    let updates = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            let ev = match rx.recv().await {
                Ok(u) => match serde_json::to_string(&u) {
                    Ok(json) => SseEvent::default().event("incident").data(json),
                    Err(_) => continue,
                },
                Err(RecvError::Lagged(n)) => {
                    SseEvent::default().event("lagged").data(n.to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, Infallible>(ev), rx));
        }
    });
    use futures_util::StreamExt as _;
    Sse::new(ready.chain(updates))
        .keep_alive(KeepAlive::default())
        .into_response()
}
