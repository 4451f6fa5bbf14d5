//! Password hashing (Argon2id) on a bounded pool.
//!
//! One Argon2 run needs 19 MiB. Run on an unbounded `spawn_blocking`, a burst of wrong
//! passwords allocates that much per blocking thread, and the allocator keeps the freed
//! buffers in per-thread arenas: measured before this pool, 200 log-ins at 16 at a time grew
//! a server from 23 MB to 1.7 GB. Here at most `password_hashers` hashes run at once (one
//! per CPU by default), each on a buffer taken from a pool and put back, so hashing never
//! holds more than `password_hashers × 19 MiB`, allocated once. A caller that would wait
//! longer than `password_hash_max_wait` for a slot gets RATE_LIMITED instead of queueing.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use argon2::{
    password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::{DomainError, DomainResult};

type Buffer = Vec<Block>;

/// The hashing pool.
pub struct Hasher {
    slots: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Buffer>>>,
    max_wait: Duration,
    /// A hash of a random password: verified against when an email is unknown, so both
    /// failure paths cost the same.
    dummy: String,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("slots", &self.slots.available_permits())
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

fn new_buffer(blocks: usize) -> Buffer {
    vec![Block::default(); blocks]
}

/// Argon2id with the crate's default (OWASP) parameters: m = 19 MiB, t = 2, p = 1.
fn hash_into(buffer: &mut Buffer, password: &[u8]) -> anyhow::Result<String> {
    let params = Params::default();
    if buffer.len() < params.block_count() {
        buffer.resize(params.block_count(), Block::default());
    }
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, &mut buffer[..])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`. A string that is not an Argon2 hash
/// (e.g. the unusable marker of a deleted account) matches nothing.
fn verify_into(buffer: &mut Buffer, password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.hash,
        hash.salt,
    ) else {
        return false;
    };
    let version = hash
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if buffer.len() < params.block_count() {
        buffer.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt_bytes, &mut out, &mut buffer[..])
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

impl Hasher {
    /// A pool of `slots` concurrent hashes; callers wait at most `max_wait` for one.
    pub fn new(slots: usize, max_wait: Duration) -> Hasher {
        let slots = slots.max(1);
        let mut first = new_buffer(Params::default().block_count());
        let dummy = hash_into(&mut first, uuid::Uuid::new_v4().to_string().as_bytes())
            .expect("hashing a random password");
        Hasher {
            slots: Arc::new(Semaphore::new(slots)),
            buffers: Arc::new(Mutex::new(vec![first])),
            max_wait,
            dummy,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Buffer) -> T + Send + 'static,
    ) -> DomainResult<T> {
        // The acquire is polled once before the deadline counts, so a zero wait still
        // takes a free slot.
        let permit = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("kfactor_rate_limited_total", "limit" => "password_hashers")
                    .increment(1);
                DomainError::RateLimited {
                    retry_after_seconds: 1,
                }
            })?
            .map_err(|e| anyhow::anyhow!("hasher closed: {e}"))?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            // At most one buffer per slot exists: a holder of a permit finds one free or
            // makes the pool's next.
            let mut buffer = buffers
                .lock()
                .expect("hash buffers")
                .pop()
                .unwrap_or_else(|| new_buffer(Params::default().block_count()));
            let result = job(&mut buffer);
            buffers.lock().expect("hash buffers").push(buffer);
            drop(permit);
            result
        })
        .await
        .map_err(|e| DomainError::Internal(anyhow::anyhow!("hashing task failed: {e}")))
    }

    /// Hashes a new password (Argon2id PHC string).
    pub async fn hash(&self, password: String) -> DomainResult<String> {
        self.run(move |buf| hash_into(buf, password.as_bytes()))
            .await?
            .map_err(DomainError::from)
    }

    /// Checks a password against a stored hash; `None` checks against a dummy hash, so an
    /// unknown account costs the same as a wrong password.
    pub async fn verify(&self, password: String, stored: Option<String>) -> DomainResult<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.clone());
        let ok = self
            .run(move |buf| verify_into(buf, password.as_bytes(), &stored))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn pooled_hashes_are_standard_argon2id_and_buffers_can_be_reused() {
        let mut buf = new_buffer(16);
        let h = hash_into(&mut buf, b"correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        // A hash made the usual way verifies on a buffer that held another computation.
        let salt = SaltString::generate(&mut OsRng);
        let std_hash = Argon2::default()
            .hash_password(b"another password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_into(&mut buf, b"another password", &std_hash));
        assert!(!verify_into(&mut buf, b"another passwore", &std_hash));
        assert!(verify_into(&mut buf, b"correct horse battery", &h));
        assert!(
            !verify_into(&mut buf, b"x", "!"),
            "an unusable hash matches nothing"
        );
    }

    #[tokio::test]
    async fn a_full_pool_refuses_instead_of_queueing_past_the_wait() {
        let hasher = Arc::new(Hasher::new(1, Duration::ZERO));
        let busy = hasher.slots.clone().acquire_owned().await.unwrap();
        let r = hasher.verify("p".into(), None).await;
        assert!(matches!(r, Err(DomainError::RateLimited { .. })), "{r:?}");
        drop(busy);
        assert!(!hasher.verify("p".into(), None).await.unwrap());
        let h = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(hasher
            .verify("correct horse battery".into(), Some(h))
            .await
            .unwrap());
    }
}
