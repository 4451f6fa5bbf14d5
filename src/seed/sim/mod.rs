//! The demo world, simulated in time order: seed signups (organic and paid) arrive with
//! growth; every user may invite people, activate, share a project and refer friends; some of
//! those invitations, links and referral links turn into new signups later, which go on to do
//! the same. Free organizations that hit their member limit upgrade now and then. Nothing is
//! written here: the result is plain rows for [`super::write`].
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
};

use rand::{rngs::StdRng, Rng, SeedableRng};
use uuid::Uuid;

mod world;

pub use world::*;

/// Milliseconds since the epoch.
pub type Ms = i64;

const HOUR: Ms = 3_600_000;
const DAY: Ms = 24 * HOUR;
/// Invitations expire 7 days after their last send (the server's default).
const INVITATION_TTL: Ms = 7 * DAY;

enum Via {
    Seed { paid: bool, acme: bool },
    Invite(usize),
    Share { link: usize },
    Referral(usize),
}

const SURFACES: [&str; 4] = [
    "onboarding",
    "project-share-dialog",
    "settings-members",
    "empty-state",
];
const LINK_SURFACES: [&str; 3] = ["share-dialog", "project-header", "export-menu"];

struct Sim {
    rng: StdRng,
    spec: Spec,
    w: World,
    heap: BinaryHeap<Reverse<(Ms, u64, usize)>>,
    pending: Vec<Option<Via>>,
    seq: u64,
    /// Visitor ids that open several links.
    regulars: Vec<String>,
    /// (org, user) → membership exists.
    joined: HashMap<(usize, usize), ()>,
    /// (org, user) pairs a team invitation went to (one invitation per organization and email).
    team_invited: std::collections::HashSet<(usize, usize)>,
}

/// Simulates a world of exactly `spec.users` users (seed signups are scaled so the viral loop
/// fills the span, and topped up with organic ones if it falls short).
pub fn run(spec: Spec) -> World {
    // First pass: how many users does one seed make? Then scale the seeds.
    let probe = Sim::new(
        Spec {
            users: usize::MAX,
            ..spec
        },
        (spec.users / 2).max(1),
    )
    .simulate();
    let per_seed = probe.users.len() as f64 / (spec.users / 2).max(1) as f64;
    let seeds = ((spec.users as f64 / per_seed).ceil() as usize).max(1);
    let mut w = Sim::new(spec, seeds).simulate();
    let missing = spec.users.saturating_sub(w.users.len());
    if missing > 0 {
        let mut sim = Sim::resume(spec, w);
        for _ in 0..missing {
            let t = sim.rng.random_range(spec.start..spec.end);
            sim.push(
                t,
                Via::Seed {
                    paid: false,
                    acme: false,
                },
            );
        }
        w = sim.simulate();
    }
    w
}

impl Sim {
    fn new(spec: Spec, seeds: usize) -> Sim {
        let mut sim = Sim::resume(spec, World::default());
        // Seeds arrive with growth: three times as many in the last week as in the first.
        let span = (spec.end - spec.start) as f64;
        let g = 3f64.ln();
        for i in 0..seeds {
            let u: f64 = sim.rng.random();
            let t = spec.start + (span * (1.0 + u * (g.exp() - 1.0)).ln() / g) as Ms;
            let acme = i > 0 && sim.rng.random_bool(0.01);
            let paid = !acme && sim.rng.random_bool(0.2);
            // The first seed founds Acme, the large organization.
            let t = if i == 0 { spec.start } else { t };
            sim.push(t, Via::Seed { paid, acme });
        }
        sim
    }

    fn resume(spec: Spec, w: World) -> Sim {
        let regulars = (0..1000).map(|i| format!("v_regular_{i:04}")).collect();
        let mut joined = HashMap::new();
        for m in &w.members {
            joined.insert((m.org, m.user), ());
        }
        Sim {
            rng: StdRng::seed_from_u64(spec.seed ^ (w.users.len() as u64).rotate_left(17)),
            spec,
            w,
            heap: BinaryHeap::new(),
            pending: Vec::new(),
            seq: 0,
            regulars,
            joined,
            team_invited: Default::default(),
        }
    }

    fn push(&mut self, at: Ms, via: Via) {
        if at >= self.spec.end {
            return;
        }
        self.pending.push(Some(via));
        self.heap
            .push(Reverse((at, self.seq, self.pending.len() - 1)));
        self.seq += 1;
    }

    fn id(&mut self, at: Ms) -> Uuid {
        let bytes: [u8; 10] = self.rng.random();
        uuid::Builder::from_unix_timestamp_millis(at.max(0) as u64, &bytes).into_uuid()
    }

    fn exp(&mut self, mean: Ms) -> Ms {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        (-(mean as f64) * u.ln()) as Ms
    }

    fn simulate(mut self) -> World {
        while let Some(Reverse((at, _, slot))) = self.heap.pop() {
            if self.w.users.len() >= self.spec.users {
                break;
            }
            let via = self.pending[slot].take().expect("each event once");
            self.sign_up(at, via);
        }
        self.w
    }

    fn new_org(&mut self, at: Ms, name: String, plan: &'static str) -> usize {
        let id = self.id(at);
        self.w.orgs.push(Org {
            id,
            name,
            plan,
            created: at,
            members: 0,
            projects: 0,
            pending_until: Vec::new(),
        });
        self.w.orgs.len() - 1
    }

    fn join(&mut self, org: usize, user: usize, role: &'static str, at: Ms) {
        if self.joined.insert((org, user), ()).is_some() {
            return;
        }
        let id = self.id(at);
        self.w.members.push(Member {
            id,
            org,
            user,
            role,
            joined: at,
        });
        self.w.orgs[org].members += 1;
    }

    fn sign_up(&mut self, at: Ms, via: Via) {
        let n = self.w.users.len();
        let id = self.id(at);
        // Through an invitation the user takes its address and joins its organization.
        let invitation = match via {
            Via::Seed { acme: true, .. } if !self.w.orgs.is_empty() => {
                // A hire at Acme: an Acme member invited them the day before.
                let inviter = self.acme_member();
                Some(self.invitation(0, inviter, at - DAY, false, None))
            }
            Via::Invite(inv) => Some(inv),
            _ => None,
        };
        let (source, utm, invited_by, via_token, attributed_org) = match (invitation, via) {
            (Some(inv), _) => {
                let i = &self.w.invitations[inv];
                (
                    Source::Invite,
                    None,
                    Some(i.inviter),
                    Some(i.id),
                    Some(i.org),
                )
            }
            (None, Via::Seed { paid, .. }) => (
                if paid { Source::Paid } else { Source::Organic },
                paid.then_some(if n % 2 == 0 {
                    "google-ads"
                } else {
                    "newsletter"
                }),
                None,
                None,
                None,
            ),
            (None, Via::Share { link }) => {
                let l = &self.w.links[link];
                (
                    Source::Share,
                    None,
                    Some(l.creator),
                    Some(l.id),
                    Some(l.org),
                )
            }
            (None, Via::Referral(referrer)) => (
                Source::Referral,
                None,
                Some(referrer),
                None,
                Some(self.w.users[referrer].org),
            ),
            (None, Via::Invite(_)) => unreachable!("an invite signup has its invitation"),
        };
        let (email, org) = match invitation {
            Some(inv) => (
                self.w.invitations[inv].email.clone(),
                self.accept(inv, at, n),
            ),
            None if n == 0 => (
                format!("user{n}@demo.kfactor.test"),
                self.new_org(at, "Acme Corp".into(), "business"),
            ),
            None => (
                format!("user{n}@demo.kfactor.test"),
                self.new_org(at, format!("User {n}'s workspace"), "free"),
            ),
        };
        self.w.users.push(User {
            id,
            n,
            email,
            created: at,
            source,
            utm,
            invited_by,
            via_token,
            attributed_org,
            org,
            activated: None,
        });
        let role = if invitation.is_some() {
            "member"
        } else {
            "owner"
        };
        self.join(org, n, role, at);
        self.behave(n, at);
    }

    fn acme_member(&mut self) -> usize {
        let acme: Vec<usize> = self
            .w
            .members
            .iter()
            .rev()
            .take(50)
            .filter(|m| m.org == 0)
            .map(|m| m.user)
            .collect();
        if acme.is_empty() {
            0
        } else {
            acme[self.rng.random_range(0..acme.len())]
        }
    }

    /// Marks an invitation accepted by user `n` and returns its organization.
    fn accept(&mut self, inv: usize, at: Ms, n: usize) -> usize {
        let i = &mut self.w.invitations[inv];
        i.accepted = Some((at, n));
        i.opened = Some(i.opened.map_or(at, |o| o.min(at)));
        i.org
    }

    /// Room for one more pending invitation under the member limit; a full free or pro
    /// organization upgrades half of the time (the product-led loop at work).
    fn room(&mut self, org: usize, at: Ms) -> bool {
        let o = &mut self.w.orgs[org];
        o.pending_until.retain(|u| *u > at);
        let cap = match o.plan {
            "free" => 5,
            "pro" => 50,
            _ => usize::MAX,
        };
        if o.members + o.pending_until.len() < cap {
            return true;
        }
        if self.rng.random_bool(0.5) {
            let to = if o.plan == "free" { "pro" } else { "business" };
            let from = o.plan;
            o.plan = to;
            self.w.plan_changes.push(PlanChange { org, from, to, at });
            return true;
        }
        false
    }

    fn invitation(
        &mut self,
        org: usize,
        inviter: usize,
        at: Ms,
        team: bool,
        email: Option<String>,
    ) -> usize {
        let id = self.id(at);
        let n = self.w.invitations.len();
        let surface = (!self.rng.random_bool(0.1))
            .then(|| SURFACES[self.rng.random_range(0..SURFACES.len())]);
        self.w.invitations.push(Invitation {
            id,
            org,
            inviter,
            email: email.unwrap_or_else(|| format!("invitee{n}@demo.kfactor.test")),
            surface,
            team,
            sent: at,
            resent: None,
            opened: None,
            accepted: None,
            revoked: false,
        });
        n
    }

    /// What user `n` does after signing up at `at`.
    fn behave(&mut self, n: usize, at: Ms) {
        let org = self.w.users[n].org;
        let end = self.spec.end;
        // Invitations: half of the users invite, three people on average; Acme hires more.
        let inviting = self.rng.random_bool(if org == 0 { 0.6 } else { 0.55 });
        let count = if inviting {
            1 + (self.exp(25) as usize / 10)
        } else {
            0
        };
        for _ in 0..count {
            let sent = at + self.exp(DAY) + self.rng.random_range(0..HOUR);
            if sent >= end || !self.room(org, sent) {
                break;
            }
            // One in ten goes to someone who already has an account: a team invitation.
            let existing = if self.rng.random_bool(0.1) && n > 10 {
                let other = self.rng.random_range(0..n);
                (!self.joined.contains_key(&(org, other)) && self.team_invited.insert((org, other)))
                    .then_some(other)
            } else {
                None
            };
            let email = existing.map(|u| self.w.users[u].email.clone());
            let inv = self.invitation(org, n, sent, existing.is_some(), email);
            let expires = sent + INVITATION_TTL;
            if let Some(other) = existing {
                let accept = sent + self.exp(DAY);
                if accept < end.min(expires) && self.rng.random_bool(0.6) {
                    self.accept(inv, accept, other);
                    self.join(org, other, "member", accept);
                    self.w.orgs[org].pending_until.push(accept);
                } else {
                    self.w.orgs[org].pending_until.push(expires);
                }
                continue;
            }
            let convert = self.rng.random_bool(if org == 0 { 0.42 } else { 0.38 });
            let when = sent + self.exp(DAY + DAY / 2);
            if convert && when < expires {
                self.w.invitations[inv].opened = Some(sent + (when - sent) / 2);
                self.w.orgs[org].pending_until.push(when);
                self.push(when, Via::Invite(inv));
            } else {
                self.w.orgs[org].pending_until.push(expires);
                if self.rng.random_bool(0.5) {
                    let o = sent + self.exp(DAY);
                    if o < end {
                        self.w.invitations[inv].opened = Some(o);
                    }
                }
                let r = self.rng.random::<f64>();
                if r < 0.25 {
                    let again = sent + 2 * DAY + self.rng.random_range(0..3 * DAY);
                    if again < end {
                        self.w.invitations[inv].resent = Some(again);
                    }
                } else if r < 0.28 {
                    self.w.invitations[inv].revoked = true;
                }
            }
        }
        // Activation: a first project (a comment when the free plan is full).
        if !self.rng.random_bool(0.6) {
            self.refer(n, at);
            return;
        }
        let act = at + self.exp(6 * HOUR);
        if act >= end {
            return;
        }
        self.w.users[n].activated = Some(act);
        let full = self.w.orgs[org].plan == "free" && self.w.orgs[org].projects >= 3;
        let project = if full && !self.w.projects.is_empty() {
            let p = self.w.projects.len() - 1;
            self.w.projects[p].comments.push((Some(n), act));
            None
        } else {
            let id = self.id(act);
            self.w.projects.push(Project {
                id,
                org,
                creator: n,
                created: act,
                comments: Vec::new(),
            });
            self.w.orgs[org].projects += 1;
            Some(self.w.projects.len() - 1)
        };
        if let Some(p) = project {
            if self.rng.random_bool(0.4) {
                let c = act + self.exp(DAY);
                if c < end {
                    self.w.projects[p].comments.push((Some(n), c));
                }
            }
            if self.rng.random_bool(0.35) {
                let when = act + self.exp(12 * HOUR);
                self.share(n, p, when);
            }
        }
        self.refer(n, at);
    }

    /// A shared link to a project, its guests' visits, comments and signups.
    fn share(&mut self, n: usize, project: usize, at: Ms) {
        let end = self.spec.end;
        if at >= end {
            return;
        }
        let org = self.w.users[n].org;
        let r = self.rng.random::<f64>();
        let permission = if r < 0.05 && self.w.orgs[org].plan != "free" {
            "edit"
        } else if r < 0.3 {
            "comment"
        } else {
            "view"
        };
        let id = self.id(at);
        let surface = LINK_SURFACES[self.rng.random_range(0..LINK_SURFACES.len())];
        let link = self.w.links.len();
        self.w.links.push(Link {
            id,
            org,
            project,
            creator: n,
            permission,
            surface,
            created: at,
            visits: Vec::new(),
        });
        // Heavy-tailed audience: most links reach a few people, a few reach hundreds.
        let audience = if self.rng.random_bool(0.01) {
            100 + self.rng.random_range(0..400)
        } else {
            1 + self.exp(5) as usize
        };
        for v in 0..audience {
            let visitor = if self.rng.random_bool(0.2) {
                self.regulars[self.rng.random_range(0..self.regulars.len())].clone()
            } else {
                format!("v_{link}_{v}")
            };
            let mut t = at + self.exp(2 * DAY);
            let visits = 1 + self.exp(10) as usize / 10;
            let first = t;
            for _ in 0..visits {
                if t >= end {
                    break;
                }
                // One open in seven has no visitor id: it counts as its own visitor.
                let key = if self.rng.random_bool(0.15) {
                    format!("anon_{:032x}", self.rng.random::<u128>())
                } else {
                    visitor.clone()
                };
                self.w.links[link].visits.push((key, t));
                t += self.exp(DAY);
            }
            if first >= end {
                continue;
            }
            if permission != "view" && self.rng.random_bool(0.1) {
                let c = first + self.exp(HOUR);
                if c < end {
                    self.w.projects[project].comments.push((None, c));
                }
            }
            if self.rng.random_bool(0.04) {
                let when = first + self.exp(DAY);
                self.push(when, Via::Share { link });
            }
        }
    }

    /// Some people pass their referral link on.
    fn refer(&mut self, n: usize, at: Ms) {
        if self.rng.random_bool(0.05) {
            let t = at + self.exp(5 * DAY);
            self.push(t, Via::Referral(n));
        }
    }
}
