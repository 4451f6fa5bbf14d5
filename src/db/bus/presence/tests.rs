//! The rooms alone, by hand, with a clock the test moves.
use super::*;
use crate::clock::ManualClock;

fn viewer(id: &str) -> Viewer {
    Viewer {
        id: id.into(),
        name: id.into(),
        kind: ViewerKind::Guest,
        cursor: None,
        selection: None,
        state: None,
        updated_at: 0,
    }
}

#[test]
fn frames_carry_every_change_once_with_the_last_value() {
    let clock = ManualClock::default();
    let p = Arc::new(Presence::new(Settings::default(), Arc::new(clock.clone())));
    let room = ProjectId::generate();
    let mut a = p.join(room, viewer("a")).unwrap();
    let b = p.join(room, viewer("b")).unwrap();
    let first = a.frame();
    assert!(first.full);
    assert_eq!(first.viewers.len(), 2);
    for x in 0..10 {
        let c = Change {
            cursor: Some(Point {
                x: x as f64,
                y: 0.0,
            }),
            ..Change::default()
        };
        assert_eq!(p.update(room, "b", c), Updated::Applied);
    }
    let f = a.frame();
    assert!(!f.full);
    assert_eq!(f.viewers.len(), 1);
    assert_eq!(f.viewers[0].cursor, Some(Point { x: 9.0, y: 0.0 }));
    drop(b);
    let f = a.frame();
    assert_eq!(f.left, vec!["b".to_string()]);
    assert_eq!(f.count, 1);
    clock.advance(chrono::Duration::seconds(9));
    a.expire();
    assert!(a.frame().gone);
    drop(a);
    assert_eq!(p.counts(), (0, 0));
}

#[test]
fn a_full_room_refuses() {
    let settings = Settings {
        max_viewers: 2,
        ..Settings::default()
    };
    let p = Arc::new(Presence::new(settings, Arc::new(ManualClock::default())));
    let room = ProjectId::generate();
    let _a = p.join(room, viewer("a")).unwrap();
    let _b = p.join(room, viewer("b")).unwrap();
    assert_eq!(p.join(room, viewer("c")).err(), Some(Full(2)));
}
