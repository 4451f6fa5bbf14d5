//! Unit tests of the configuration's parsing and validation.
use super::{raw::StrOrNum, *};

#[test]
fn signup_links_respect_an_existing_query() {
    let mut c = Config::for_database("sqlite::memory:");
    assert_eq!(
        c.signup_link(&[("ref", "ab")]),
        "http://127.0.0.1:8080/signup?ref=ab"
    );
    c.signup_url = Some("https://app.example.com/start?lang=en".into());
    assert_eq!(
        c.signup_link(&[("invite", "t"), ("email", "a+b@x.io")]),
        "https://app.example.com/start?lang=en&invite=t&email=a%2Bb%40x.io"
    );
    assert_eq!(
        c.signup_link(&[("ref", "a b&c=d~é")]),
        "https://app.example.com/start?lang=en&ref=a+b%26c%3Dd%7E%C3%A9",
        "encoded by the url crate (form encoding)"
    );
}

#[test]
fn public_url_defaults_from_bind() {
    let c = Config::for_database("sqlite::memory:");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
}

#[test]
fn previous_secrets_are_a_list_in_toml_or_comma_separated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kfactor.toml");
    let (a, b) = ("a".repeat(32), "b".repeat(40));
    std::fs::write(&file, format!("secret_previous = [\"{a}\", \"{b}\"]\n")).unwrap();
    let c = Config::load_from(&file, true).unwrap();
    let got: Vec<&[u8]> = c.secret_previous.iter().map(|s| s.0.as_slice()).collect();
    assert_eq!(got, [a.as_bytes(), b.as_bytes()]);
    let c = Config::validate(Raw {
        secret_previous: Some(StringOrList::One(format!(" {a} , {b},"))),
        ..Raw::default()
    })
    .unwrap();
    assert_eq!(c.secret_previous.len(), 2);
    let e = Config::validate(Raw {
        secret_previous: Some(StringOrList::One(format!("{a},tooshort-secret"))),
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_SECRET_PREVIOUS");
    assert!(!format!("{e}").contains("tooshort"), "secrets never echo");
    assert!(!format!("{c:?}").contains(&a), "nor print");
}

#[test]
fn bad_values_name_their_key() {
    let e = Config::validate(Raw {
        bind: "nope".into(),
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_BIND");
    let e = Config::validate(Raw {
        secret: Some("short".into()),
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_SECRET");
    assert!(!format!("{e}").contains("short"), "secrets never echo");
    let e = Config::validate(Raw {
        stripe_webhook_secret: Some("sk_live_not_a_signing_secret".into()),
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_STRIPE_WEBHOOK_SECRET");
    assert!(!format!("{e}").contains("sk_live"), "secrets never echo");
    let c = Config::validate(Raw {
        stripe_webhook_secret: Some(" whsec_abcdefgh ".into()),
        ..Raw::default()
    })
    .unwrap();
    assert_eq!(c.stripe_webhook_secret.unwrap().0, b"whsec_abcdefgh");
}

#[test]
fn growth_keys_are_validated() {
    let c = Config::for_database("sqlite::memory:");
    assert_eq!(c.attribution_window, chrono::Duration::days(30));
    assert_eq!(
        c.activation_events,
        [
            ActivationEvent::ProjectCreated,
            ActivationEvent::CommentAdded
        ]
    );
    let c = Config::validate(Raw {
        activation_events: " invitation_sent ,project_created".into(),
        ..Raw::default()
    })
    .unwrap();
    assert_eq!(
        c.activation_events,
        [
            ActivationEvent::InvitationSent,
            ActivationEvent::ProjectCreated
        ]
    );
    for bad in ["", "signup", "project_created,nope"] {
        let e = Config::validate(Raw {
            activation_events: bad.into(),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.given_as, "KFACTOR_ACTIVATION_EVENTS", "{bad:?}");
    }
    for bad in [0, 366] {
        let e = Config::validate(Raw {
            attribution_window_days: bad,
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.given_as, "KFACTOR_ATTRIBUTION_WINDOW_DAYS");
    }
}

#[test]
fn webhook_keys_are_validated() {
    let c = Config::for_database("sqlite::memory:");
    assert_eq!(c.webhook_retry_schedule.len(), 8);
    assert_eq!(c.webhook_retry_schedule[2].as_secs(), 300);
    assert!(!c.webhook_allow_http && !c.webhook_allow_private);
    assert_eq!(c.webhook_retention_days, 30);
    let c = Config::validate(Raw {
        webhook_retry_schedule: StrOrNum::Str(" 0, 1 ,2".into()),
        ..Raw::default()
    })
    .unwrap();
    assert_eq!(
        c.webhook_retry_schedule,
        [0, 1, 2].map(std::time::Duration::from_secs)
    );
    let c = Config::validate(Raw {
        webhook_retry_schedule: StrOrNum::Num(7),
        ..Raw::default()
    })
    .unwrap();
    assert_eq!(c.webhook_retry_schedule.len(), 1);
    for bad in ["", "1,,2", "-1", "5m", "9999999"] {
        let e = Config::validate(Raw {
            webhook_retry_schedule: StrOrNum::Str(bad.into()),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.given_as, "KFACTOR_WEBHOOK_RETRY_SCHEDULE", "{bad:?}");
    }
    let e = Config::validate(Raw {
        webhook_retention_days: 0,
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_WEBHOOK_RETENTION_DAYS");
    let e = Config::validate(Raw {
        webhook_concurrency: 0,
        ..Raw::default()
    })
    .unwrap_err();
    assert_eq!(e.given_as, "KFACTOR_WEBHOOK_CONCURRENCY");
}
