//! The formats kfactor sealed with before `v2.`, read so existing rows keep working; nothing
//! writes them except tests proving the upgrade path.
//!
//! - Webhook signing secrets (format 0): base64 of the key XORed with an HMAC-SHA256
//!   keystream bound to the row id. It has no authentication tag, so it "opens" under any
//!   key: it is only opened with the current secret, and only when no previous secret is
//!   configured (otherwise [`OpenError::Ambiguous`]). kfactor converts these rows to `v2.`
//!   at start-up, so this only matters for the first start after the upgrade.
//! - Idempotent responses (format `v1.`): a random nonce, the same keystream and a truncated
//!   HMAC tag (encrypt-then-MAC); the tag tells which secret sealed it.
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{subkey, Keyring, OpenError, Opened, Purpose};

const WEBHOOK_LABEL: &[u8] = b"webhook secrets";
const IDEMPOTENCY_LABEL: &[u8] = b"idempotent responses";

/// Opens an old-format value of `purpose`.
pub(super) fn open(
    ring: &Keyring,
    purpose: Purpose,
    context: &[u8],
    sealed: &str,
) -> Result<Opened, OpenError> {
    match purpose {
        Purpose::WebhookSecret => {
            let raw = STANDARD.decode(sealed).map_err(|_| OpenError::Malformed)?;
            if ring.has_previous() {
                return Err(OpenError::Ambiguous);
            }
            let key = subkey(ring.current(), WEBHOOK_LABEL);
            Ok(Opened {
                plaintext: xor_keystream(&key, context, &raw),
                current: false,
            })
        }
        Purpose::IdempotentResponse => {
            let body = sealed.strip_prefix("v1.").ok_or(OpenError::Malformed)?;
            let raw = URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| OpenError::Malformed)?;
            if raw.len() < 32 {
                return Err(OpenError::Malformed);
            }
            let (body, tag) = raw.split_at(raw.len() - 16);
            for secret in ring.all() {
                if bool::from(v1_tag(secret, body).ct_eq(tag)) {
                    let (nonce, ciphertext) = body.split_at(16);
                    return Ok(Opened {
                        plaintext: xor_keystream(
                            &subkey(secret, IDEMPOTENCY_LABEL),
                            nonce,
                            ciphertext,
                        ),
                        current: false,
                    });
                }
            }
            Err(OpenError::WrongKey)
        }
        Purpose::KeyCheck => Err(OpenError::Malformed),
    }
}

/// Whether `sealed` is a webhook secret in format 0 (the start-up conversion looks for these).
pub fn is_untagged_webhook_secret(sealed: &str) -> bool {
    !sealed.starts_with("v2.") && STANDARD.decode(sealed).is_ok()
}

/// A webhook secret in format 0, as kfactor before `v2.` stored it (for upgrade tests).
pub fn seal_webhook_secret_v0(secret: &[u8], row_id: &[u8], key: &[u8]) -> String {
    STANDARD.encode(xor_keystream(&subkey(secret, WEBHOOK_LABEL), row_id, key))
}

/// An idempotent response in format `v1.`, as kfactor before `v2.` stored it (for upgrade
/// tests).
pub fn seal_idempotent_response_v1(secret: &[u8], data: &[u8]) -> String {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    out.extend(xor_keystream(
        &subkey(secret, IDEMPOTENCY_LABEL),
        &nonce,
        data,
    ));
    let tag = v1_tag(secret, &out);
    out.extend_from_slice(&tag);
    format!("v1.{}", URL_SAFE_NO_PAD.encode(out))
}

fn v1_tag(secret: &[u8], body: &[u8]) -> [u8; 16] {
    let label = [IDEMPOTENCY_LABEL, b" tag"].concat();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&subkey(secret, &label))
        .expect("HMAC takes any key size");
    mac.update(body);
    mac.finalize().into_bytes()[..16]
        .try_into()
        .expect("16 of 32 bytes")
}

/// `data` XORed with the keystream HMAC-SHA256(key, nonce ‖ block counter).
fn xor_keystream(key: &[u8; 32], nonce: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (block, chunk) in data.chunks(32).enumerate() {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
        mac.update(nonce);
        mac.update(&(block as u32).to_be_bytes());
        let pad = mac.finalize().into_bytes();
        out.extend(chunk.iter().zip(pad.iter()).map(|(a, b)| a ^ b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_formats_open() {
        let secret = vec![7u8; 32];
        let ring = Keyring::new(secret.clone(), vec![]);
        let v0 = seal_webhook_secret_v0(&secret, b"row id", b"the key");
        assert!(is_untagged_webhook_secret(&v0));
        let o = ring.open(Purpose::WebhookSecret, b"row id", &v0).unwrap();
        assert_eq!(
            (o.plaintext.as_slice(), o.current),
            (&b"the key"[..], false)
        );
        let rotated = Keyring::new(vec![8; 32], vec![secret.clone()]);
        assert_eq!(
            rotated.open(Purpose::WebhookSecret, b"row id", &v0),
            Err(OpenError::Ambiguous),
            "untagged: cannot tell which secret"
        );

        let v1 = seal_idempotent_response_v1(&secret, b"{\"data\":1}");
        let o = rotated
            .open(Purpose::IdempotentResponse, b"any", &v1)
            .unwrap();
        assert_eq!(
            (o.plaintext.as_slice(), o.current),
            (&b"{\"data\":1}"[..], false)
        );
        assert_eq!(
            Keyring::new(vec![9; 32], vec![]).open(Purpose::IdempotentResponse, b"", &v1),
            Err(OpenError::WrongKey)
        );
    }
}
