//! Cross-cutting HTTP concerns: bearer-token auth, security headers, the embedded UI.

use crate::error::{ApiError, ServeError};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

mod ui_assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// Whether the UI was built and embedded at compile time.
pub fn ui_embedded() -> bool {
    !ui_assets::ASSETS.is_empty()
}

/// The Content-Security-Policy: no inline script, no eval, nothing from elsewhere. The one
/// inline style allowed (by hash, not `'unsafe-inline'`) is the small stylesheet cytoscape
/// injects for its container; the browser tests fail on any CSP violation, so a cytoscape
/// upgrade that changes it is caught.
pub const CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Paths that need no token: the UI's static files and the API description.
fn is_public(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics") || path == "/api/v1/openapi.json"
}

/// Compare without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        if !is_public(req.uri().path()) {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()));
            if !ok {
                return ApiError::unauthorized().into_response();
            }
        }
    }
    next.run(req).await
}

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

const NO_UI_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Causeway</title></head><body><h1>Causeway</h1>\
<p>The API is running at <code>/api/v1</code> (described by \
<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>), but this binary was built \
without the web UI.</p><p>To build it: <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run \
build</code>, then rebuild the binary (<code>cargo build</code>); the UI in \
<code>ui/dist</code> is embedded at compile time.</p></body></html>";

fn asset(path: &str) -> Option<Response> {
    let (_, bytes) = ui_assets::ASSETS.iter().find(|(p, _)| *p == path)?;
    // Vite puts content hashes in names under assets/: those never change.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, cache),
            ],
            Body::from(*bytes),
        )
            .into_response(),
    )
}

/// `GET /`: the UI, or a page saying how to build it.
pub async fn index() -> Response {
    asset("index.html").unwrap_or_else(|| {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NO_UI_PAGE,
        )
            .into_response()
    })
}

/// Everything not routed: a UI file, or a JSON 404.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if !path.starts_with("/api/") {
        if let Some(r) = asset(path.trim_start_matches('/')) {
            return r;
        }
    }
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such route".into(),
    }
    .into_response()
}

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token: loopback listener.
    None,
    Configured,
    /// Read from the data directory's token file.
    Stored,
    /// Generated now and written to the data directory.
    Generated,
}

/// File name of the stored token inside the data directory.
pub const TOKEN_FILE: &str = "api-token";

/// Decide the token for a listener: a configured one; none on loopback (unless required);
/// else the one stored in the data directory, generated (0600) at first start.
pub fn resolve_token(
    listen: SocketAddr,
    configured: Option<&str>,
    data_dir: Option<&Path>,
    require_on_loopback: bool,
) -> Result<(Option<String>, TokenSource), ServeError> {
    if let Some(t) = configured {
        let t = t.trim();
        if t.is_empty() {
            return Err(ServeError::EmptyToken);
        }
        return Ok((Some(t.to_string()), TokenSource::Configured));
    }
    if listen.ip().is_loopback() && !require_on_loopback {
        return Ok((None, TokenSource::None));
    }
    let dir = data_dir.ok_or(ServeError::TokenRequired(listen))?;
    let path = dir.join(TOKEN_FILE);
    let file_err = |source| ServeError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            return Ok((Some(t.trim().to_string()), TokenSource::Stored));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_err(e)),
    }
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(ServeError::Io)?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(dir).map_err(file_err)?;
    write_private(&path, token.as_bytes()).map_err(file_err)?;
    Ok((Some(token), TokenSource::Generated))
}

/// Write a file only its owner can read (created 0600, never world-readable in between).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: force it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    f.sync_all()
}
