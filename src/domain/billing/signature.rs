//! `Stripe-Signature` verification, exactly as Stripe specifies it: the header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…][,v0=…]`; the signed text is `"{t}.{body}"`;
//! the key is the endpoint's signing secret (`whsec_…`, used as it is); any one `v1` may
//! match (Stripe sends several while a secret is being rolled); other schemes are ignored;
//! the timestamp must be within 300 s of now; comparisons are constant-time.
//!
//! It costs one HMAC over the body and touches nothing else, so a forged request is cheap to
//! refuse: the timestamp is checked before hashing and the header's size is bounded.
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far the signed timestamp may be from now, in seconds (Stripe's default tolerance).
pub const TOLERANCE_SECONDS: i64 = 300;
/// The longest header accepted (a real one is under 200 bytes, two `v1` during a roll).
const MAX_HEADER: usize = 2048;
/// The most `v1` signatures compared.
const MAX_SIGNATURES: usize = 8;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    Missing,
    /// The header is not `t=…,v1=…`.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// The timestamp is more than 300 s away from now (a replay, or a wrong clock).
    #[error("timestamp outside the tolerance zone")]
    Stale,
    /// No `v1` signature matches the body under the secret.
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks a `Stripe-Signature` header against the raw body.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures: Vec<[u8; 32]> = Vec::new();
    let mut v1s = 0;
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => {
                v1s += 1;
                if v1s > MAX_SIGNATURES {
                    return Err(SignatureError::Malformed);
                }
                // A value that is not 32 hex bytes can never match; it is skipped.
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(value.trim(), &mut sig).is_ok() {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if v1s == 0 {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - t).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, t, body);
    let matched = signatures
        .iter()
        .fold(subtle::Choice::from(0), |any, s| any | s.ct_eq(&expected));
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256(secret, `"{t}.{body}"`).
fn sign(secret: &[u8], t: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";

    fn header(t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", hex::encode(sign(SECRET, t, body)))
    }

    #[test]
    fn accepts_any_matching_v1_within_tolerance_only() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let good = header(t, body);
        assert_eq!(verify(SECRET, Some(&good), body, now), Ok(()));
        let rolled = format!(
            "t={t},v1={},v1={},v0=abc",
            "00".repeat(32),
            &good[good.find("v1=").unwrap() + 3..]
        );
        assert_eq!(verify(SECRET, Some(&rolled), body, now), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&header(t - 301, body)), body, now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&header(t - 300, body)), body, now),
            Ok(())
        );
        assert_eq!(
            verify(b"whsec_other", Some(&good), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(&good), br#"{"id":"evt_2"}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, None, body, now),
            Err(SignatureError::Missing)
        );
        for bad in ["", "v1=00", "t=abc,v1=00", "t=1"] {
            assert_eq!(
                verify(SECRET, Some(bad), body, now),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        let many = format!("t={t}{}", ",v1=00".repeat(9));
        assert_eq!(
            verify(SECRET, Some(&many), body, now),
            Err(SignatureError::Malformed)
        );
    }
}
