//! The precompute worker keeps the dashboard's benchmark windows computed ahead: their answers
//! come from its computation (no request waits for one), equal a recomputation, and after new
//! facts land they equal a recomputation again once the worker refreshed them. The clock is the
//! injected one; the worker is woken instead of waited for. Runs on SQLite and on PostgreSQL.
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::{
    benchmarks::{accept_one_of_the_first_others, day0, user_row, world},
    growth::no_limits,
    helpers::spawn_with,
    helpers::TestApp,
};
use kfactor::domain::{
    access::Caller,
    benchmarks::{self, snapshot::Snapshot},
    dashboard::Range,
    ids::OrgId,
};

/// Wakes the worker and waits (polling, up to 30 s) until it kept a computation of `key`
/// made at the clock's current time.
async fn kept_now(app: &TestApp, key: (DateTime<Utc>, DateTime<Utc>)) -> Arc<Snapshot> {
    let svc = &app.app.svc;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    svc.benchmarks.wake();
    loop {
        if let Some(s) = svc.benchmarks.kept(key) {
            if s.computed_at == app.clock_now() {
                return s;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not compute {key:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_dashboard_windows_are_precomputed_and_refreshed_equal_to_a_recomputation() {
    let app = spawn_with(no_limits).await;
    let (ours, others, pool) = world(&app).await;
    let svc = &app.app.svc;
    let user = user_row(&app, &ours).await;
    let caller = || Caller::User(&user);
    let org = OrgId::parse(&ours.org_id).unwrap();
    // The dashboard's default window (the last 12 weeks up to the end of today) and the
    // 4-week one, both covering day 0.
    let now = app.clock_now();
    assert!(now > day0());
    for weeks in [4, 12] {
        let (from, to) = Range::Weeks(weeks).window(now);
        let kept = kept_now(&app, (from, to)).await;
        let answer = benchmarks::for_org(svc, caller(), org, from, to)
            .await
            .unwrap();
        assert_eq!(
            answer.computed_at, kept.computed_at,
            "{weeks}w: answered from the precomputation"
        );
        let fresh = benchmarks::recompute(svc, caller(), org, from, to)
            .await
            .unwrap();
        assert_eq!(answer, fresh, "{weeks}w: equal to a recomputation");
        assert_eq!(answer.metrics[1].contributors, 11, "{weeks}w");
    }

    // New facts: o1 gets an acceptance (the rollups follow the facts).
    let (from, to) = Range::Weeks(4).window(now);
    let before = benchmarks::for_org(svc, caller(), org, from, to)
        .await
        .unwrap();
    accept_one_of_the_first_others(&app, &others, &pool).await;
    let fresh = benchmarks::recompute(svc, caller(), org, from, to)
        .await
        .unwrap();
    assert_ne!(
        fresh.metrics, before.metrics,
        "o1 now has an activation rate"
    );
    // Until the refresh is due the kept computation answers; the worker computes it again
    // three quarters into KFACTOR_BENCHMARKS_CACHE_SECONDS (300 s), before it expires.
    app.clock.advance(Duration::seconds(200));
    let cached = benchmarks::for_org(svc, caller(), org, from, to)
        .await
        .unwrap();
    assert_eq!(cached, before);
    app.clock.advance(Duration::seconds(25));
    let kept = kept_now(&app, (from, to)).await;
    let refreshed = benchmarks::for_org(svc, caller(), org, from, to)
        .await
        .unwrap();
    assert_eq!(refreshed.computed_at, kept.computed_at, "the refreshed one");
    let fresh = benchmarks::recompute(svc, caller(), org, from, to)
        .await
        .unwrap();
    assert_eq!(refreshed, fresh, "equal to a recomputation");
    assert_eq!(refreshed.metrics[2].contributors, 11);
    assert_ne!(refreshed.metrics, before.metrics);
}

/// Custom windows computed on demand never push the kept ones out, however many there are.
#[tokio::test]
async fn custom_windows_do_not_evict_the_precomputed_ones() {
    let app = spawn_with(no_limits).await;
    let (ours, _others, _pool) = world(&app).await;
    let svc = &app.app.svc;
    let user = user_row(&app, &ours).await;
    let org = OrgId::parse(&ours.org_id).unwrap();
    let key = Range::Weeks(52).window(app.clock_now());
    let kept = kept_now(&app, key).await;
    for d in 0..=benchmarks::snapshot::MAX_WINDOWS as i64 {
        let from = day0() - Duration::days(30 + d);
        benchmarks::for_org(svc, Caller::User(&user), org, from, day0())
            .await
            .unwrap();
    }
    let answer = benchmarks::for_org(svc, Caller::User(&user), org, key.0, key.1)
        .await
        .unwrap();
    assert_eq!(answer.computed_at, kept.computed_at);
}
