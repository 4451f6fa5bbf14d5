//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`,
//! one `v1,…` per active secret, space-separated. Secrets are `whsec_` + base64 of the key.
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a secret's text form.
pub const PREFIX: &str = "whsec_";
/// Length of generated keys, in bytes (the spec allows 24..=64).
pub const KEY_LEN: usize = 32;

/// A signing key. Its `Debug` never prints the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> SigningKey {
        let mut key = vec![0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        SigningKey(key)
    }

    /// Parses `whsec_<base64>` (24..=64 bytes).
    pub fn parse(s: &str) -> Option<SigningKey> {
        let key = STANDARD.decode(s.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then_some(SigningKey(key))
    }

    /// Wraps raw key bytes (e.g. opened from storage, see [`crate::crypto`]).
    pub fn from_bytes(key: Vec<u8>) -> SigningKey {
        SigningKey(key)
    }

    /// The raw key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text form shown to the user once: `whsec_<base64>`.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per key, space-separated, in key order.
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_spec_vector() {
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let sig = key.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn secrets_round_trip() {
        let k = SigningKey::generate();
        let text = k.reveal();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningKey::parse(&text).unwrap(), k);
        assert!(
            SigningKey::parse("whsec_dG9vc2hvcnQ=").is_none(),
            "too short"
        );
    }

    #[test]
    fn one_signature_per_key() {
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        let h = signature_header(&[a.clone(), b.clone()], "msg_x", 1, b"{}");
        let parts: Vec<_> = h.split(' ').collect();
        assert_eq!(
            parts,
            [a.sign("msg_x", 1, b"{}"), b.sign("msg_x", 1, b"{}")]
        );
    }
}
