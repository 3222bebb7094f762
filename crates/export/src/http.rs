//! The one blocking HTTP client of the webhook and OTLP sinks, and the one rule on which
//! answers are worth retrying.

use crate::config::{parse_url, ExportError};
use crate::runner::DeliveryError;
use std::time::Duration;
use ureq::Agent;

/// An agent with a whole-request timeout that returns 4xx/5xx as answers, not errors, and
/// does not follow redirects (a redirected POST would lose its body or its signature's
/// meaning; a 3xx is a configuration error and is not retried).
pub(crate) fn agent(timeout: Duration) -> Agent {
    let config = Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build();
    Agent::new_with_config(config)
}

/// Check an `http(s)://` URL the way the sinks need it, with a clear error.
pub(crate) fn check_url(sink: &'static str, url: &str) -> Result<(), ExportError> {
    parse_url(sink, url, &["http", "https"])?;
    url.parse::<ureq::http::Uri>()
        .map(|_| ())
        .map_err(|e| ExportError::Url {
            sink,
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// POST `body` and map the outcome: 2xx done; 408, 429 and 5xx retryable (the receiver is
/// overloaded or failing); other statuses permanent (it refused this content). Transport
/// failures (refused, reset, timeout, DNS) are retryable; a malformed request is not.
pub(crate) fn post(
    agent: &Agent,
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), DeliveryError> {
    let mut req = agent.post(url).header("content-type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send(body) {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Read (a bounded part of) the answer so the connection can be reused; its
            // content does not matter, only the status does.
            let _ = resp
                .into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec();
            match status {
                200..=299 => Ok(()),
                408 | 429 | 500..=599 => Err(DeliveryError::retryable(format!(
                    "receiver answered {status}"
                ))),
                _ => Err(DeliveryError::permanent(format!(
                    "receiver answered {status}"
                ))),
            }
        }
        Err(e) => {
            let permanent = matches!(
                e,
                ureq::Error::BadUri(_)
                    | ureq::Error::Http(_)
                    | ureq::Error::RequireHttpsOnly(_)
                    | ureq::Error::InvalidProxyUrl
            );
            let d = if permanent {
                DeliveryError::permanent(format!("request failed: {e}"))
            } else {
                DeliveryError::retryable(format!("request failed: {e}"))
            };
            Err(d.with_source(e))
        }
    }
}
