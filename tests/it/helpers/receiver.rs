//! A real HTTP webhook receiver on 127.0.0.1:0: records every request and answers from a
//! script (default 200).
use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};

/// One received request.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// How to answer one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` header.
    RetryAfter(u16, u64),
    /// Never answer (until the sender gives up or dies).
    Hang,
    /// A status with this body.
    Body(u16, &'static [u8]),
    /// 200 after this many milliseconds.
    Delay(u64),
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
}

/// The receiver handle.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let state = inner.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(state, uri, headers, body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, inner }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `replies`, in order, then with the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is used up (200 unless set).
    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `n` requests arrived (fails the test after a generous bound).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1500 {
            let r = self.received();
            if r.len() >= n {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "receiver got {} requests, expected {n}",
            self.received().len()
        );
    }
}

async fn handle(state: Arc<Inner>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    });
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.default.lock().unwrap().clone())
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(s) => (StatusCode::from_u16(s).unwrap(), "receiver says hi").into_response(),
        Reply::RetryAfter(s, secs) => (
            StatusCode::from_u16(s).unwrap(),
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Body(s, body) => (StatusCode::from_u16(s).unwrap(), body).into_response(),
        Reply::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK.into_response()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Verifies a Standard Webhooks signature independently of the server's code: true when one
/// of the `v1,` signatures in `webhook-signature` is the HMAC of `secret`.
pub fn verify(secret: &str, r: &Received) -> bool {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use hmac::{Hmac, Mac};
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.",
            r.header("webhook-id"),
            r.header("webhook-timestamp")
        )
        .as_bytes(),
    );
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

/// Verifies with the `standardwebhooks` Python package (a third party's verifier). Returns
/// None when it is not installed (CI installs it and sets KFACTOR_TEST_PYTHON; with
/// KFACTOR_REQUIRE_STANDARDWEBHOOKS=1 a missing package fails the test).
pub fn verify_with_python(secret: &str, r: &Received) -> Option<bool> {
    use std::io::Write;
    let python = std::env::var("KFACTOR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/verify_standardwebhooks.py"
    );
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let input = serde_json::json!({
        "secret": secret,
        "headers": r.headers,
        "body": String::from_utf8(r.body.clone()).unwrap(),
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (out.status.code(), stdout.as_str()) {
        (Some(0), "ok") => Some(true),
        (Some(1), "invalid") => Some(false),
        _ => {
            let required =
                std::env::var("KFACTOR_REQUIRE_STANDARDWEBHOOKS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "standardwebhooks verifier unavailable: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("skipping third-party verification: standardwebhooks is not installed");
            None
        }
    }
}
