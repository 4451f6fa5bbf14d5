//! Sealing data at rest and the server secret's keyring.
//!
//! One format for everything kfactor stores encrypted (webhook signing secrets, idempotent
//! responses, the key check): `v2.` + base64url(nonce ‖ XChaCha20-Poly1305 ciphertext ‖ tag).
//! The AEAD key is derived with HKDF-SHA256 from the server secret and the [`Purpose`]; the
//! caller's context (a row id, an idempotency key) is the associated data, so a sealed value
//! opens only for the row it was written for. A wrong key is an error, never garbage.
//!
//! A [`Keyring`] holds the current secret (`KFACTOR_SECRET`), which seals, and the previous
//! ones (`KFACTOR_SECRET_PREVIOUS`), which only open and verify. Formats of older kfactor
//! versions still open ([`legacy`]); [`Opened::current`] tells the caller whether a value
//! should be written again under the current key.
//!
//! This module is a leaf: it knows no table, no domain rule and no worker.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub mod legacy;
pub mod signing;

/// The prefix of the current format.
const V2: &str = "v2.";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// What a sealed value is; part of the key derivation and of the associated data, so a
/// value sealed for one purpose never opens as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A webhook endpoint's signing secret (context: the secret row's id).
    WebhookSecret,
    /// A stored response of an idempotent request (context: scope and key).
    IdempotentResponse,
    /// The known value that proves at start-up which secret sealed the database's data.
    KeyCheck,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::WebhookSecret => b"kfactor.seal.webhook_secret",
            Purpose::IdempotentResponse => b"kfactor.seal.idempotent_response",
            Purpose::KeyCheck => b"kfactor.seal.key_check",
        }
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed value of any known format.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under a secret that is neither the current nor a previous one, or altered.
    #[error("sealed with a secret that is neither KFACTOR_SECRET nor in KFACTOR_SECRET_PREVIOUS, or altered")]
    WrongKey,
    /// An old format without an authentication tag while previous secrets are configured:
    /// which secret sealed it cannot be told (see [`legacy`]).
    #[error("stored in an old format that cannot tell which of several secrets sealed it")]
    Ambiguous,
}

/// What [`Keyring::open`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The clear text.
    pub plaintext: Vec<u8>,
    /// True when it was sealed in the current format under the current secret; false means
    /// `kfactor secrets reseal` (or the next write) should seal it again.
    pub current: bool,
}

/// The server secret (seals, derives) and the previous ones (open, verify).
#[derive(Clone)]
pub struct Keyring {
    /// Current first.
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(current + {} previous, ***)",
            self.secrets.len() - 1
        )
    }
}

impl Keyring {
    /// A keyring of the current secret and the previous ones (newest first). Duplicates of
    /// the current secret among the previous ones are dropped.
    pub fn new(current: Vec<u8>, previous: Vec<Vec<u8>>) -> Keyring {
        assert!(
            current.len() >= 32,
            "server secret must be at least 32 bytes"
        );
        let mut secrets = vec![current];
        for p in previous {
            if !secrets.contains(&p) {
                secrets.push(p);
            }
        }
        Keyring { secrets }
    }

    /// The secret that seals and derives.
    pub fn current(&self) -> &[u8] {
        &self.secrets[0]
    }

    /// Every secret, the current one first: what verifies.
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.secrets.iter().map(Vec::as_slice)
    }

    /// Whether any previous secret is configured.
    pub fn has_previous(&self) -> bool {
        self.secrets.len() > 1
    }

    /// Seals `plaintext` for `purpose` and `context` under the current secret.
    pub fn seal(&self, purpose: Purpose, context: &[u8], plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(purpose, context);
        let sealed = cipher(self.current(), purpose)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length kfactor stores");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend(sealed);
        format!("{V2}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what [`Keyring::seal`] (or an older kfactor) sealed for `purpose` and `context`,
    /// trying the current secret, then each previous one.
    pub fn open(
        &self,
        purpose: Purpose,
        context: &[u8],
        sealed: &str,
    ) -> Result<Opened, OpenError> {
        let Some(body) = sealed.strip_prefix(V2) else {
            return legacy::open(self, purpose, context, sealed);
        };
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let aad = associated_data(purpose, context);
        for (i, secret) in self.all().enumerate() {
            let opened = cipher(secret, purpose).decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            );
            if let Ok(plaintext) = opened {
                return Ok(Opened {
                    plaintext,
                    current: i == 0,
                });
            }
        }
        Err(OpenError::WrongKey)
    }
}

/// The AEAD of one secret and purpose. HKDF's salt names the scheme, so these keys never
/// equal anything else derived from the secret.
fn cipher(secret: &[u8], purpose: Purpose) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"kfactor seal v2"), secret)
        .expand(purpose.label(), &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

/// A 32-byte key for `label` derived from `secret` (HMAC-SHA256 as a PRF): for keys that
/// are not sealing keys, such as the rate limiter's key hashing, and for the old formats.
pub fn subkey(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(b"kfactor subkey\0");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn associated_data(purpose: Purpose, context: &[u8]) -> Vec<u8> {
    let mut aad = purpose.label().to_vec();
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(k: u8) -> Keyring {
        Keyring::new(vec![k; 32], vec![])
    }

    #[test]
    fn opens_only_unaltered_with_the_same_key_purpose_and_context() {
        let r = ring(7);
        let text = br#"{"data":{"createSharedLink":{"url":"https://app/s/abc"}}}"#;
        let sealed = r.seal(Purpose::IdempotentResponse, b"ctx", text);
        assert!(sealed.starts_with("v2.") && !sealed.contains("abc"));
        assert_ne!(
            sealed,
            r.seal(Purpose::IdempotentResponse, b"ctx", text),
            "a fresh nonce each time"
        );
        let opened = r
            .open(Purpose::IdempotentResponse, b"ctx", &sealed)
            .unwrap();
        assert_eq!(
            (opened.plaintext.as_slice(), opened.current),
            (&text[..], true)
        );
        let wrong = |r: &Keyring, p, c: &[u8], s: &str| r.open(p, c, s).unwrap_err();
        assert_eq!(
            wrong(&r, Purpose::IdempotentResponse, b"other", &sealed),
            OpenError::WrongKey
        );
        assert_eq!(
            wrong(&r, Purpose::KeyCheck, b"ctx", &sealed),
            OpenError::WrongKey
        );
        assert_eq!(
            wrong(&ring(8), Purpose::IdempotentResponse, b"ctx", &sealed),
            OpenError::WrongKey
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        raw[30] ^= 1;
        let tampered = format!("v2.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(
            wrong(&r, Purpose::IdempotentResponse, b"ctx", &tampered),
            OpenError::WrongKey
        );
        assert_eq!(
            wrong(&r, Purpose::IdempotentResponse, b"ctx", "v2.short"),
            OpenError::Malformed
        );
    }

    #[test]
    fn previous_secrets_open_but_never_seal() {
        let old = ring(1);
        let sealed = old.seal(Purpose::WebhookSecret, b"row", b"key");
        let rotated = Keyring::new(vec![2; 32], vec![vec![1; 32]]);
        let opened = rotated
            .open(Purpose::WebhookSecret, b"row", &sealed)
            .unwrap();
        assert_eq!(
            (opened.plaintext.as_slice(), opened.current),
            (&b"key"[..], false)
        );
        let resealed = rotated.seal(Purpose::WebhookSecret, b"row", b"key");
        assert!(
            ring(2)
                .open(Purpose::WebhookSecret, b"row", &resealed)
                .unwrap()
                .current
        );
        assert_eq!(
            old.open(Purpose::WebhookSecret, b"row", &resealed),
            Err(OpenError::WrongKey)
        );
    }
}
