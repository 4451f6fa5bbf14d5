//! Stripe in tests: events built like Stripe's, `Stripe-Signature` headers computed here
//! (independently of the server's verifier), and the official `stripe` package's verifier.
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::TestApp;

/// The endpoint secret the billing test apps are configured with.
pub const SECRET: &str = "whsec_kfactor_test_0123456789abcdef";

/// Price ids the test catalog maps to plans.
pub const PRO_PRICE: &str = "price_pro_monthly";
pub const BUSINESS_PRICE: &str = "price_business_monthly";

/// The default catalog with Stripe prices mapped to Pro and Business.
pub fn catalog() -> String {
    kfactor::domain::plans::DEFAULT_CATALOG
        .replace(
            "key = \"pro\"",
            &format!("key = \"pro\"\nstripe_price_ids = [\"{PRO_PRICE}\", \"price_pro_yearly\"]"),
        )
        .replace(
            "key = \"business\"",
            &format!("key = \"business\"\nstripe_price_ids = [\"{BUSINESS_PRICE}\"]"),
        )
}

/// `t={t},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`.
pub fn header(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An event envelope.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": created,
        "livemode": false, "pending_webhooks": 1, "type": kind,
        "data": { "object": object },
    })
    .to_string()
}

/// A `checkout.session.completed` for a subscription checkout naming `org`.
pub fn checkout(id: &str, created: i64, org: &str, customer: &str, sub: &str) -> String {
    event(
        id,
        "checkout.session.completed",
        created,
        json!({
            "id": format!("cs_{id}"), "object": "checkout.session", "mode": "subscription",
            "client_reference_id": org, "customer": customer, "subscription": sub,
            "payment_status": "paid", "status": "complete", "metadata": {},
        }),
    )
}

/// A subscription's state as `customer.subscription.*` events carry it.
pub struct Sub<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub status: &'a str,
    pub price: &'a str,
    pub cancel_at_period_end: bool,
    pub period_end: i64,
    /// `metadata.organization_id`, if the checkout put it there.
    pub org: Option<&'a str>,
}

/// A `customer.subscription.{created,updated,deleted}` event.
pub fn subscription(id: &str, kind: &str, created: i64, s: &Sub) -> String {
    let metadata = match s.org {
        Some(o) => json!({ "organization_id": o }),
        None => json!({}),
    };
    event(
        id,
        &format!("customer.subscription.{kind}"),
        created,
        json!({
            "id": s.id, "object": "subscription", "customer": s.customer, "status": s.status,
            "cancel_at_period_end": s.cancel_at_period_end, "current_period_end": s.period_end,
            "items": { "object": "list", "data": [{
                "id": format!("si_{}", s.id), "object": "subscription_item", "quantity": 1,
                "price": { "id": s.price, "object": "price", "recurring": { "interval": "month" } },
            }] },
            "metadata": metadata,
        }),
    )
}

impl TestApp {
    /// POSTs a body to `/billing/stripe` with a `Stripe-Signature` header (if any).
    pub async fn post_stripe(&self, body: &str, signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/billing/stripe", self.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = signature {
            req = req.header("stripe-signature", s);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends an event signed now (as Stripe does on every delivery and retry) and returns
    /// the `outcome` the server answered; panics unless it answered 200.
    pub async fn send_stripe(&self, body: &str) -> String {
        let t = self.clock_now().timestamp();
        let (status, answer) = self.post_stripe(body, Some(&header(SECRET, t, body))).await;
        assert_eq!(status, 200, "{answer}");
        answer["outcome"].as_str().unwrap().to_string()
    }
}

/// Verifies each (payload, header) with the `stripe` Python package (its
/// `WebhookSignature.verify_header`, tolerance 300 s, against the wall clock). None when it
/// is not installed (CI installs it and sets KFACTOR_TEST_PYTHON; with
/// KFACTOR_REQUIRE_STRIPE=1 a missing package fails the test).
pub fn verify_with_stripe(secret: &str, cases: &[(String, String)]) -> Option<Vec<bool>> {
    use std::io::Write;
    let python = std::env::var("KFACTOR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/verify_stripe.py");
    let spawned = std::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let required = std::env::var("KFACTOR_REQUIRE_STRIPE").is_ok_and(|v| v == "1");
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            assert!(!required, "cannot run {python}: {e}");
            eprintln!("skipping the stripe cross-check: cannot run {python}");
            return None;
        }
    };
    let input = json!({
        "secret": secret,
        "cases": cases.iter().map(|(p, h)| json!({ "payload": p, "header": h })).collect::<Vec<_>>(),
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (
        out.status.code(),
        serde_json::from_str::<Vec<bool>>(&stdout),
    ) {
        (Some(0), Ok(results)) => Some(results),
        _ => {
            assert!(
                !required,
                "the stripe verifier is unavailable: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("skipping the stripe cross-check: the stripe package is not installed");
            None
        }
    }
}
