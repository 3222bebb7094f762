//! Webhook sink: every incident, when it opens and each time it grows, POSTed as JSON and
//! signed the Standard Webhooks way (<https://www.standardwebhooks.com/>):
//!
//! - `webhook-id`: `msg_<32 hex>`, unique per message and the same on every retry, so a
//!   receiver can drop duplicates (delivery is at least once);
//! - `webhook-timestamp`: Unix seconds of *this attempt* (receivers reject old timestamps,
//!   so a retry is signed anew);
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
//!
//! The body is `{"type": "incident.opened" | "incident.updated", "timestamp": RFC 3339,
//! "data": <incident>}`. One message per request; 2xx is done, 408/429/5xx and transport
//! failures are retried, other answers make the message a dead letter.

use crate::config::{ExportError, WebhookConfig};
use crate::output::{Accepts, Change, Output};
use crate::runner::{DeliveryError, EncodeError, Sink};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use causeway_model::timefmt::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;

/// The signing key. Standard Webhooks secrets are written `whsec_<base64 of the key>`; a
/// file in that form is decoded, any other file is used as raw key bytes (one trailing
/// newline removed, since editors add one).
#[derive(Clone)]
pub struct WebhookSecret {
    len: usize,
    /// The keyed HMAC, cloned for each signature.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({} bytes)", self.len)
    }
}

impl WebhookSecret {
    pub fn from_file(path: &Path) -> Result<WebhookSecret, ExportError> {
        let bytes = std::fs::read(path).map_err(|source| ExportError::SecretFile {
            path: path.to_path_buf(),
            source,
        })?;
        WebhookSecret::parse(&bytes).map_err(|reason| ExportError::Secret {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse a secret from the bytes of its file.
    pub fn parse(bytes: &[u8]) -> Result<WebhookSecret, String> {
        let trimmed = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(bytes);
        let key = match trimmed.strip_prefix(b"whsec_") {
            Some(b64) => B64
                .decode(b64)
                .map_err(|e| format!("whsec_ secret is not valid base64: {e}"))?,
            None => trimmed.to_vec(),
        };
        if key.is_empty() {
            return Err("the secret is empty".into());
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
        Ok(WebhookSecret {
            len: key.len(),
            mac,
        })
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// One encoded webhook message.
#[derive(Debug)]
pub struct WebhookMessage {
    pub id: String,
    pub body: Vec<u8>,
}

pub struct WebhookSink {
    url: String,
    secret: WebhookSecret,
    agent: ureq::Agent,
    ids: (RandomState, RandomState),
    seq: u64,
}

impl WebhookSink {
    pub fn new(cfg: &WebhookConfig) -> Result<WebhookSink, ExportError> {
        crate::http::check_url("webhook", &cfg.url)?;
        Ok(WebhookSink {
            url: cfg.url.clone(),
            secret: WebhookSecret::from_file(&cfg.secret_file)?,
            agent: crate::http::agent(cfg.timeout),
            ids: (RandomState::new(), RandomState::new()),
            seq: 0,
        })
    }

    /// A message id: two 64-bit hashes, under this process's random keys, of a sequence
    /// number and the time, so ids do not repeat across messages or restarts.
    fn next_id(&mut self) -> String {
        self.seq += 1;
        let t = Timestamp::now().0;
        let a = self.ids.0.hash_one((self.seq, t, std::process::id()));
        let b = self.ids.1.hash_one((t, self.seq));
        format!("msg_{a:016x}{b:016x}")
    }
}

impl Sink for WebhookSink {
    type Message = WebhookMessage;

    fn name(&self) -> &'static str {
        "webhook"
    }

    fn accepts(&self) -> Accepts {
        Accepts {
            incidents: true,
            flags: false,
            events: false,
        }
    }

    fn encode(&mut self, output: &Output) -> Result<WebhookMessage, EncodeError> {
        let Output::Incident { change, incident } = output else {
            // `accepts` keeps other outputs away; encoding one anyway is a bug upstream.
            return Err(EncodeError::Unsupported("webhook sends incidents only"));
        };
        let kind = match change {
            Change::Opened => "incident.opened",
            Change::Updated => "incident.updated",
        };
        let body = serde_json::to_vec(&serde_json::json!({
            "type": kind,
            "timestamp": Timestamp::now().to_rfc3339(),
            "data": &**incident,
        }))?;
        Ok(WebhookMessage {
            id: self.next_id(),
            body,
        })
    }

    fn deliver(&mut self, batch: &[WebhookMessage]) -> Result<(), DeliveryError> {
        // A webhook request carries one message: a batch is sent in order and stops at the
        // first failure, telling the runner how many went through.
        for (done, m) in batch.iter().enumerate() {
            let ts = Timestamp::now().0.div_euclid(1_000_000_000);
            let sig = self.secret.sign(&m.id, ts, &m.body);
            let ts = ts.to_string();
            crate::http::post(
                &self.agent,
                &self.url,
                "application/json",
                &[
                    ("webhook-id", &m.id),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &sig),
                ],
                &m.body,
            )
            .map_err(|e| e.at_message(done))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        let s = WebhookSecret::parse(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        assert_eq!(
            s.len,
            B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .len()
        );
        assert_eq!(WebhookSecret::parse(b"raw key\n").unwrap().len, 7);
        assert!(WebhookSecret::parse(b"\n").is_err());
        assert!(WebhookSecret::parse(b"whsec_!!!").is_err());
    }

    #[test]
    fn standard_webhooks_example_signature() {
        // The example of the Standard Webhooks specification.
        let s = WebhookSecret::parse(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = s.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
