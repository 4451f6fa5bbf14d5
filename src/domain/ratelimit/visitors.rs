//! How many distinct visitor ids one client address may introduce per period.
//!
//! Visitor ids come from the client (`sharedLink(visitorId:)`, the `kf_vid` cookie), so
//! without a bound one address could inflate `uniqueVisitors` at will. Each address gets a
//! set of the ids it used this period; an id beyond the budget is replaced by one id for the
//! whole address, so its opens still count as visits but add at most one visitor.
use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    sync::Mutex,
};

use crate::config::Rate;

/// Addresses tracked at once; beyond it the table starts over (budgets reset early, which
/// only an attacker with that many addresses could notice).
const MAX_ADDRESSES: usize = 50_000;

#[derive(Debug, Default)]
pub(super) struct VisitorIds {
    seen: Mutex<HashMap<String, (i64, HashSet<u64>)>>,
}

impl VisitorIds {
    /// Whether `visitor` may count as its own visitor for `address` at `now` (ms).
    pub(super) fn admit(&self, address: &str, visitor: &str, now: i64, rate: Rate) -> bool {
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(visitor);
        let period = rate.period.as_millis() as i64;
        let mut seen = self.seen.lock().expect("visitor ids");
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(address) {
            seen.retain(|_, (start, _)| now - *start < period);
            if seen.len() >= MAX_ADDRESSES {
                seen.clear();
            }
        }
        let (start, ids) = seen
            .entry(address.to_string())
            .or_insert_with(|| (now, HashSet::new()));
        if now - *start >= period {
            *start = now;
            ids.clear();
        }
        if ids.contains(&h) {
            return true;
        }
        if ids.len() < rate.count as usize {
            ids.insert(h);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_address_introduces_at_most_its_budget_of_ids_per_period() {
        let v = VisitorIds::default();
        let rate = Rate::new(2, Duration::from_secs(60));
        assert!(v.admit("1.2.3.4", "a", 0, rate));
        assert!(v.admit("1.2.3.4", "b", 1, rate));
        assert!(!v.admit("1.2.3.4", "c", 2, rate));
        assert!(v.admit("1.2.3.4", "a", 3, rate), "known ids stay welcome");
        assert!(v.admit("5.6.7.8", "c", 3, rate), "per address");
        assert!(v.admit("1.2.3.4", "c", 60_000, rate), "a new period");
    }
}
