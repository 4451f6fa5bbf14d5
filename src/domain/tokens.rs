//! Tokens.
//!
//! *Derived* tokens (share links, invitations) are not stored: token =
//! base64url(id ‖ HMAC-SHA256(secret, purpose ‖ id ‖ version)). Verifying one is a primary-key
//! lookup plus a constant-time compare; bumping the row's `version` kills every older token;
//! the server can print a link again; a database leak alone reveals no token.
//!
//! *Session* tokens are random and only their SHA-256 is stored.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::crypto::Keyring;

type HmacSha256 = Hmac<Sha256>;

/// What a derived token is for; part of the MAC so a token of one kind never verifies as
/// another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// An invitation link, as copied from the API (`Invitation.url`).
    Invitation,
    /// The same invitation's link as sent in its email: holding it proves the address.
    InvitationEmail,
    /// A shared link.
    SharedLink,
    /// The unsubscribe link of a user's weekly digest (the id is the user's).
    DigestUnsubscribe,
    /// The unsubscribe link of a user's notification email (the id is the user's).
    NotificationUnsubscribe,
    /// An email link of [`entity::email_tokens`] (verify an address, reset a password,
    /// confirm a new address).
    EmailToken(entity::email_tokens::Purpose),
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        use entity::email_tokens::Purpose as E;
        match self {
            Purpose::Invitation => b"kfactor.invitation.v1",
            Purpose::InvitationEmail => b"kfactor.invitation_email.v1",
            Purpose::SharedLink => b"kfactor.shared_link.v1",
            Purpose::DigestUnsubscribe => b"kfactor.digest_unsubscribe.v1",
            Purpose::NotificationUnsubscribe => b"kfactor.notification_unsubscribe.v1",
            Purpose::EmailToken(E::VerifyEmail) => b"kfactor.verify_email.v1",
            Purpose::EmailToken(E::ResetPassword) => b"kfactor.reset_password.v1",
            Purpose::EmailToken(E::ChangeEmail) => b"kfactor.change_email.v1",
        }
    }
}

/// The server secret (current and previous, see [`crate::crypto::Keyring`]) and what is
/// derived from it.
#[derive(Clone)]
pub struct Keys {
    ring: Keyring,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    /// Keys from a secret of at least 32 bytes and no previous ones.
    pub fn new(secret: Vec<u8>) -> Keys {
        Keys::rotated(secret, Vec::new())
    }

    /// Keys from the current secret and the previous ones, which still verify and open.
    pub fn rotated(secret: Vec<u8>, previous: Vec<Vec<u8>>) -> Keys {
        Keys {
            ring: Keyring::new(secret, previous),
        }
    }

    /// The keyring that seals and opens stored secrets.
    pub fn ring(&self) -> &Keyring {
        &self.ring
    }

    fn mac(secret: &[u8], purpose: Purpose, id: Uuid, version: i32) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key size");
        mac.update(purpose.label());
        mac.update(id.as_bytes());
        mac.update(&version.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A key for another purpose (the rate limiter's key hashing), derived from the current
    /// secret so it needs no storage of its own.
    pub fn subkey(&self, label: &[u8]) -> [u8; 32] {
        crate::crypto::subkey(self.ring.current(), label)
    }

    /// The token of row `id` (of whichever kind `purpose` names) at `version`.
    pub fn derive(&self, purpose: Purpose, id: impl Into<Uuid>, version: i32) -> String {
        let id = id.into();
        let mut raw = Vec::with_capacity(48);
        raw.extend_from_slice(id.as_bytes());
        raw.extend_from_slice(&Self::mac(self.ring.current(), purpose, id, version));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The CSRF token of forms shown to the browser holding the CSRF cookie `cookie`: an
    /// HMAC of the cookie, so a page on another site can neither read nor forge it (signed
    /// double-submit).
    pub fn csrf_token(&self, cookie: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.subkey(b"csrf")).expect("any key size");
        mac.update(cookie.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is the CSRF token of `cookie` (constant time).
    pub fn verify_csrf(&self, cookie: &str, token: &str) -> bool {
        !cookie.is_empty()
            && bool::from(
                self.csrf_token(cookie)
                    .as_bytes()
                    .ct_eq(token.trim().as_bytes()),
            )
    }

    /// The row id a token claims to be for; check it with [`Keys::verify`] after loading the
    /// row's version.
    pub fn claimed_id(token: &str) -> Option<Uuid> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        (raw.len() == 48).then(|| Uuid::from_slice(&raw[..16]).expect("16 bytes"))
    }

    /// Constant-time check that `token` is the token of row `id` at `version` under the
    /// current secret or a previous one (links handed out before a rotation keep working
    /// while their secret is in `KFACTOR_SECRET_PREVIOUS`).
    pub fn verify(&self, purpose: Purpose, token: &str, id: impl Into<Uuid>, version: i32) -> bool {
        let id = id.into();
        let Ok(raw) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        if raw.len() != 48 || raw[..16] != id.as_bytes()[..] {
            return false;
        }
        // Every secret is tried, so the time taken does not tell which one matched.
        self.ring.all().fold(false, |ok, secret| {
            ok | bool::from(raw[16..].ct_eq(&Self::mac(secret, purpose, id, version)))
        })
    }
}

/// A new random session token and the hash to store for it.
pub fn new_session_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("kfs_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = session_token_hash(&token);
    (token, hash)
}

/// A new random page (cookie) session token and its hash; `kfp_` so a log line or a pasted
/// value says which kind it is.
pub fn new_page_session_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("kfp_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = session_token_hash(&token);
    (token, hash)
}

/// A random value for the browser's CSRF cookie.
pub fn new_csrf_cookie() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a session token.
pub fn session_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

const SECRET_SETTING: &str = "server_secret";

/// The configured secret, or the one generated on first start and kept in `settings`, with
/// the previous secrets. Returns the keys and whether the secret was generated (the caller
/// warns about that).
///
/// When a secret is configured and a generated one is still stored (the server ran without
/// `KFACTOR_SECRET` before), the generated one counts as the oldest previous secret, so what
/// it sealed and derived keeps working until `kfactor secrets reseal` and the links' end.
pub async fn load_or_create_secret(
    db: &impl ConnectionTrait,
    configured: Option<Vec<u8>>,
    previous: Vec<Vec<u8>>,
) -> Result<(Keys, bool), sea_orm::DbErr> {
    let stored = stored_secret(db).await?;
    if let Some(s) = configured {
        let mut previous = previous;
        previous.extend(stored);
        return Ok((Keys::rotated(s, previous), false));
    }
    if let Some(bytes) = stored {
        return Ok((Keys::rotated(bytes, previous), true));
    }
    let mut bytes = vec![0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let inserted = entity::settings::ActiveModel {
        key: Set(SECRET_SETTING.into()),
        value: Set(URL_SAFE_NO_PAD.encode(&bytes)),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok((Keys::rotated(bytes, previous), true)),
        // Another instance won the race: use its secret.
        Err(_) => {
            let bytes = stored_secret(db)
                .await?
                .ok_or_else(|| sea_orm::DbErr::Custom("server secret vanished".into()))?;
            Ok((Keys::rotated(bytes, previous), true))
        }
    }
}

async fn stored_secret(db: &impl ConnectionTrait) -> Result<Option<Vec<u8>>, sea_orm::DbErr> {
    let Some(row) = entity::settings::Entity::find_by_id(SECRET_SETTING.to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(&row.value)
        .map(Some)
        .map_err(|e| sea_orm::DbErr::Custom(format!("stored secret is corrupt: {e}")))
}

/// The live user a per-user email link (an unsubscribe link: a derived token of the user id
/// for `purpose`, version 0) is for. A public token lookup, so rate limited; a token that
/// does not verify, or names a deleted user, is not found.
pub(crate) async fn user_of_email_link(
    svc: &super::Services,
    client: &super::ratelimit::Client,
    purpose: Purpose,
    token: &str,
) -> super::DomainResult<entity::users::Model> {
    use entity::users;
    use sea_orm::{ColumnTrait, QueryFilter};
    super::ratelimit::public_lookup(svc, client)?;
    let not_found = || super::DomainError::NotFound("Unsubscribe link");
    let id = Keys::claimed_id(token).ok_or_else(not_found)?;
    if !svc.keys.verify(purpose, token, id, 0) {
        return Err(not_found());
    }
    users::Entity::find_by_id(id)
        .filter(users::Column::DeletedAt.is_null())
        .one(&svc.db.read)
        .await?
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_verify_only_for_their_version_and_purpose() {
        let keys = Keys::new(vec![7; 32]);
        let id = Uuid::now_v7();
        let t = keys.derive(Purpose::Invitation, id, 1);
        assert_eq!(Keys::claimed_id(&t), Some(id));
        assert!(keys.verify(Purpose::Invitation, &t, id, 1));
        assert!(
            !keys.verify(Purpose::Invitation, &t, id, 2),
            "bumped version kills it"
        );
        assert!(
            !keys.verify(Purpose::SharedLink, &t, id, 1),
            "purpose is bound"
        );
        assert!(
            !keys.verify(Purpose::InvitationEmail, &t, id, 1),
            "a copied invitation link is not the emailed one"
        );
        assert!(!Keys::new(vec![8; 32]).verify(Purpose::Invitation, &t, id, 1));
        let rotated = Keys::rotated(vec![8; 32], vec![vec![7; 32]]);
        assert!(
            rotated.verify(Purpose::Invitation, &t, id, 1),
            "a previous secret verifies"
        );
        let fresh = rotated.derive(Purpose::Invitation, id, 1);
        assert_ne!(fresh, t, "new tokens come from the current secret");
        assert!(!keys.verify(Purpose::Invitation, &fresh, id, 1));
        assert!(!keys.verify(Purpose::Invitation, "garbage", id, 1));
    }

    #[test]
    fn session_tokens_are_random_and_hashed() {
        let (a, ha) = new_session_token();
        let (b, _) = new_session_token();
        assert_ne!(a, b);
        assert_eq!(session_token_hash(&a), ha);
        assert_eq!(ha.len(), 64);
    }
}
