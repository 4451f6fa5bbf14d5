//! The binary: configuration errors, staff flag, plan catalog check.
use std::process::Command;

use serde_json::json;

use crate::helpers::spawn;

fn kfactor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kfactor"));
    c.env_remove("KFACTOR_DATABASE_URL")
        .env_remove("KFACTOR_BIND")
        .env("KFACTOR_LOG", "warn");
    c
}

#[test]
fn bad_configuration_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("KFACTOR_BIND", "not-an-address"),
        ("KFACTOR_PUBLIC_URL", "ftp://x"),
        ("KFACTOR_SESSION_TTL_DAYS", "soon"),
    ] {
        let out = kfactor()
            .current_dir(dir.path())
            .env(key, value)
            .arg("migrate")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
    let out = kfactor()
        .current_dir(dir.path())
        .env("KFACTOR_SECRET", "too-short-and-secret")
        .arg("migrate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("KFACTOR_SECRET") && !stderr.contains("too-short-and-secret"),
        "secrets are never echoed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_grant_and_revoke() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let run = |args: &[&str]| {
        let out = kfactor()
            .env("KFACTOR_DATABASE_URL", &app.db_url)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let is_staff = || async {
        app.gql(Some(&ana.token), "{ me { isStaff } }", json!({}))
            .await["data"]["me"]["isStaff"]
            .clone()
    };
    assert_eq!(is_staff().await, json!(false));
    let (code, out) = tokio::task::block_in_place(|| run(&["staff", "grant", "ANA@example.com"]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(is_staff().await, json!(true));
    let (code, _) = tokio::task::block_in_place(|| run(&["staff", "revoke", "ana@example.com"]));
    assert_eq!(code, Some(0));
    assert_eq!(is_staff().await, json!(false));
    let (code, out) =
        tokio::task::block_in_place(|| run(&["staff", "grant", "nobody@example.com"]));
    assert_eq!(code, Some(1));
    assert!(out.contains("no user"), "{out}");
}

#[test]
fn plans_check_reports_broken_catalogs() {
    let out = kfactor().args(["plans", "check"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("free, pro, business"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.toml");
    std::fs::write(
        &path,
        kfactor::domain::plans::DEFAULT_CATALOG.replace("webhooks = false", "webhooks = 3"),
    )
    .unwrap();
    let out = kfactor()
        .args(["plans", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhooks") && err.contains("free"), "{err}");
}

/// Instances scaled out on one PostgreSQL database start at once: each migrates on start-up,
/// and none may fail because another is creating the same tables.
#[tokio::test]
async fn instances_starting_at_once_on_one_database_all_migrate() {
    let (url, _guard) = crate::helpers::fresh_database().await;
    let starts = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let config = kfactor::config::Config::for_database(&url);
            kfactor::App::build(config, std::sync::Arc::new(kfactor::clock::SystemClock))
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        })
    });
    for started in futures_util::future::join_all(starts).await {
        assert_eq!(started.unwrap(), Ok(()));
    }
}

/// `seed-demo` fills an empty database (and refuses a second time), its growth rollups verify,
/// and `metrics verify` notices a rollup that no longer matches the facts until `rebuild`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_and_metrics_verify() {
    use sea_orm::ConnectionTrait;
    let (db_url, _guard) = crate::helpers::fresh_database().await;
    let run = |args: &[&str]| {
        let out = kfactor()
            .env("KFACTOR_DATABASE_URL", &db_url)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&["seed-demo", "--users", "300", "--weeks", "4", "--seed", "7"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("users") && out.contains("300"), "{out}");
    assert!(out.contains("demo-password"), "{out}");
    let (code, _, err) = run(&["seed-demo", "--users", "300"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("empty database"), "{err}");
    let (code, out, err) = run(&["metrics", "verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Break one rollup row behind the facts' back.
    let db = sea_orm::Database::connect(&db_url).await.unwrap();
    db.execute_unprepared("UPDATE growth_days SET signups_organic = signups_organic + 1")
        .await
        .unwrap();
    let (code, out, _) = run(&["metrics", "verify"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("signups") || out.contains("day"), "{out}");
    let (code, _, err) = run(&["metrics", "rebuild"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["metrics", "verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Runs `kfactor migrate` in `dir` with `env`; returns (exit code, stderr).
fn migrate_in(dir: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = kfactor();
    c.current_dir(dir).arg("migrate");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_typo_in_kfactor_toml_stops_the_server_with_the_closest_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kfactor.toml"),
        "databse_url = \"sqlite://elsewhere.db?mode=rwc\"\n",
    )
    .unwrap();
    let (code, stderr) = migrate_in(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("`databse_url` in kfactor.toml")
            && stderr.contains("did you mean `database_url`?"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("kfactor.db").exists(),
        "nothing started on the default database"
    );

    // Keys of the safety settings are settings too.
    std::fs::write(
        dir.path().join("kfactor.toml"),
        "log = \"warn\"\ntrusted_proxies = \"\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}/ok.db?mode=rwc", dir.path().display());
    let (code, stderr) = migrate_in(dir.path(), &[("KFACTOR_DATABASE_URL", &db)]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn config_errors_name_the_setting_as_given_without_internals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kfactor.toml"), "bind = \"nope\"\n").unwrap();
    let (code, stderr) = migrate_in(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("`bind` in kfactor.toml"), "{stderr}");
    assert!(!stderr.contains("KFACTOR_BIND"), "{stderr}");

    std::fs::write(
        dir.path().join("kfactor.toml"),
        "graphql_max_depth = \"deep\"\n",
    )
    .unwrap();
    let (code, stderr) = migrate_in(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`graphql_max_depth` in kfactor.toml")
            && stderr.contains("must be a whole number"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("kfactor.toml")).unwrap();

    let (code, stderr) = migrate_in(dir.path(), &[("KFACTOR_SESSION_TTL_DAYS", "soon")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("KFACTOR_SESSION_TTL_DAYS: must be a whole number"),
        "{stderr}"
    );
    for internal in ["i64", "usize", "u32", "expected"] {
        assert!(!stderr.contains(internal), "{internal} in {stderr}");
    }

    // A broken plan catalog is a configuration error too: exit 2, naming the file.
    let plans = dir.path().join("my-plans.toml");
    std::fs::write(&plans, "this is not a catalog").unwrap();
    let (code, stderr) = migrate_in(
        dir.path(),
        &[
            ("KFACTOR_PLANS", plans.to_str().unwrap()),
            (
                "KFACTOR_DATABASE_URL",
                &format!("sqlite://{}/p.db?mode=rwc", dir.path().display()),
            ),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("KFACTOR_PLANS") && stderr.contains("my-plans.toml"),
        "{stderr}"
    );

    let out = kfactor()
        .current_dir(dir.path())
        .args(["plans", "check", "nope.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot read nope.toml"), "{stderr}");
}
