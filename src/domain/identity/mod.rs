//! Identity: sign-up with attribution, log-in, sessions.
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, QueryTrait,
};

use super::{
    ids::{OrgId, UserId},
    DomainError, DomainResult, Services,
};
use entity::{memberships, users};

mod login;
mod signup;

pub use login::*;
pub use signup::*;

/// A syntactically valid, normalised (trimmed, lower-cased) email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates and normalises an address.
    pub fn parse(raw: &str) -> DomainResult<Email> {
        let e = raw.trim().to_lowercase();
        let bad = || {
            DomainError::invalid(
                &["email"],
                "Enter a valid email address, like ana@example.com.",
            )
        };
        if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = e.split_once('@').ok_or_else(bad)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if local.is_empty()
            || local.len() > 64
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"', '@'])
            || !domain.contains('.')
            || !domain.split('.').all(label_ok)
        {
            return Err(bad());
        }
        Ok(Email(e))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 10 to 1024 characters.
pub struct Password(pub(crate) String);

impl Password {
    /// Checks the length rule.
    pub fn parse(raw: &str) -> DomainResult<Password> {
        let n = raw.chars().count();
        if n < 10 {
            return Err(DomainError::invalid(
                &["password"],
                "Use at least 10 characters for your password.",
            ));
        }
        if n > 1024 {
            return Err(DomainError::invalid(
                &["password"],
                "Passwords can be at most 1024 characters long.",
            ));
        }
        Ok(Password(raw.to_string()))
    }
}

/// A display name (of a person, an organization or a guest): cleaned by [`clean_name`],
/// trimmed, 1..=100 characters. Names end up in emails and pages, so what could disguise
/// text there is removed when they are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// The longest accepted name, in characters.
    pub const MAX: usize = 100;

    /// Cleans and validates a name; `field` names the input for the error.
    pub fn parse(raw: &str, field: &str) -> DomainResult<Name> {
        let n = clean_name(raw);
        if n.is_empty() {
            return Err(DomainError::invalid(&[field], "Enter a name."));
        }
        if n.chars().count() > Self::MAX {
            return Err(DomainError::invalid(
                &[field],
                format!("Names can be at most {} characters long.", Self::MAX),
            ));
        }
        Ok(Name(n))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is removed from names: control characters (Unicode Cc) and bidirectional
/// controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which can reorder or
/// hide what an email or page shows. Joiners (U+200C, U+200D), which emoji sequences and
/// many scripts need, stay.
fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name without control and bidirectional characters (line breaks and tabs become
/// spaces), trimmed.
pub fn clean_name(raw: &str) -> String {
    raw.chars()
        .filter_map(|c| match c {
            c if c.is_control() && c.is_whitespace() => Some(' '),
            c if is_disguising(c) => None,
            c => Some(c),
        })
        .collect::<String>()
        .trim()
        .to_string()
}

pub use entity::enums::AcquisitionSource;

/// Users by id, in no particular order (for batch loading).
pub async fn users_by_ids(
    db: &impl ConnectionTrait,
    ids: &[UserId],
) -> DomainResult<Vec<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// Whether two users share at least one organization (co-members see each other's email).
pub async fn share_an_org(db: &impl ConnectionTrait, a: UserId, b: UserId) -> DomainResult<bool> {
    if a == b {
        return Ok(true);
    }
    let orgs_of_a = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::OrganizationId)
        .filter(memberships::Column::UserId.eq(a.0))
        .into_query();
    let n = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(b.0))
        .filter(memberships::Column::OrganizationId.in_subquery(orgs_of_a))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// Grants or revokes the platform staff flag. Returns false when no user has that email.
pub async fn set_staff(svc: &Services, email: &str, staff: bool) -> DomainResult<bool> {
    let email = Email::parse(email)?;
    let res = users::Entity::update_many()
        .col_expr(users::Column::IsStaff, Expr::value(staff))
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .exec(&svc.db.write)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Points the user's active organization somewhere (or nowhere).
pub async fn set_active_org(
    db: &impl ConnectionTrait,
    user: users::Model,
    org: Option<OrgId>,
) -> DomainResult<users::Model> {
    let mut am: users::ActiveModel = user.into();
    am.active_organization_id = Set(org);
    Ok(am.update(db).await?)
}

/// The live (not deleted) account of an address.
pub(crate) async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> DomainResult<Option<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

/// Maps a unique-constraint violation to `err`; anything else stays internal.
pub(crate) fn unique_violation(e: sea_orm::DbErr, err: DomainError) -> DomainError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => err,
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.io",
            "a b@x.io",
            "ana@localhost",
            "a..b@x.io",
            "ana@-x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_names_have_bounds() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert!(Name::parse("   ", "name").is_err());
        assert!(Name::parse(&"n".repeat(101), "name").is_err());
        assert_eq!(Name::parse(" Ana ", "name").unwrap().as_str(), "Ana");
    }

    #[test]
    fn names_lose_control_and_bidi_characters_but_keep_joiners() {
        // "evil\u{202E}gpj.exe" would show as "evilexe.jpg" in a mail client.
        assert_eq!(
            Name::parse("evil\u{202E}gpj.exe", "name").unwrap().as_str(),
            "evilgpj.exe"
        );
        assert_eq!(
            clean_name("A\u{200E}na\u{2066}\u{2069}\u{061C}\u{0007}"),
            "Ana"
        );
        assert_eq!(clean_name("Ana\nSmith\t"), "Ana Smith");
        // ZWJ family emoji and a ZWNJ in Persian survive.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(clean_name(family), family);
        assert_eq!(
            clean_name("\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"),
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"
        );
        assert!(
            Name::parse("\u{202E}\u{200F}", "name").is_err(),
            "nothing left"
        );
    }
}
