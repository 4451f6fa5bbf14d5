//! `kfactor seed-demo`: a realistic, deterministic demo dataset written through the real
//! schema, for GraphiQL, the dashboard and the growth benchmarks. The same options on the same
//! day give the same rows (one seeded random stream; the span ends at today's UTC midnight).
//!
//! Everyone's password is [`PASSWORD`], hashed once: a million users take minutes, not the
//! hours a million Argon2 runs would.
mod sim;
mod write;

use std::time::Instant;

use argon2::{
    password_hash::{PasswordHasher, SaltString},
    Argon2,
};
use chrono::{DurationRound, Utc};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::domain::Services;

/// Every demo user's password.
pub const PASSWORD: &str = "demo-password";

/// What to make.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Users in all.
    pub users: usize,
    /// Weeks of history, ending today.
    pub weeks: u32,
    /// The random seed.
    pub seed: u64,
}

/// What was made.
#[derive(Debug)]
pub struct Report {
    /// Rows per table.
    pub tables: Vec<(&'static str, u64)>,
    /// The staff account to log in with.
    pub staff_email: String,
    /// The largest organization's name and member count.
    pub largest: (String, usize),
    /// Seconds spent simulating and writing.
    pub seconds: f64,
}

/// Fills an empty database with the demo world.
pub async fn run(svc: &Services, opts: Options) -> anyhow::Result<Report> {
    if opts.users < 10 {
        anyhow::bail!("--users must be at least 10");
    }
    if !(1..=520).contains(&opts.weeks) {
        anyhow::bail!("--weeks must be between 1 and 520");
    }
    let existing = entity::users::Entity::find().count(&svc.db.read).await?;
    if existing > 0 {
        anyhow::bail!(
            "seed-demo fills an empty database, and this one has {existing} users; \
             point KFACTOR_DATABASE_URL at a new database"
        );
    }
    let started = Instant::now();
    let end = Utc::now()
        .duration_trunc(chrono::Duration::days(1))
        .expect("a day divides time");
    let start = end - chrono::Duration::weeks(opts.weeks.into());
    let world = sim::run(sim::Spec {
        users: opts.users,
        start: start.timestamp_millis(),
        end: end.timestamp_millis(),
        seed: opts.seed,
    });
    // Deterministic salt: the same seed writes the same hash.
    let salt = SaltString::encode_b64(&opts.seed.to_be_bytes().repeat(2))
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string();
    // The founder of the largest organization is platform staff.
    let staff = 0;
    let tables = write::world(&svc.db.write, &world, &hash, staff, end.timestamp_millis()).await?;
    let mut sizes = vec![0usize; world.orgs.len()];
    for m in &world.members {
        sizes[m.org] += 1;
    }
    let (largest, size) = sizes
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .map(|(i, n)| (world.orgs[i].name.clone(), *n))
        .unwrap_or_default();
    let staff_email = world.users[staff].email.clone();
    drop(world);
    // The growth rollups of everything just written, computed from it.
    crate::domain::metrics::rebuild::rebuild(svc)
        .await
        .map_err(|e| anyhow::anyhow!("building the growth rollups: {e}"))?;
    Ok(Report {
        tables,
        staff_email,
        largest: (largest, size),
        seconds: started.elapsed().as_secs_f64(),
    })
}
