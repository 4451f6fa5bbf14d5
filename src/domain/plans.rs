//! The plan catalog (`plans.toml`): plans, their features and limits. Loaded and validated
//! once at start-up; `kfactor plans check` runs the same validation.
use std::collections::BTreeMap;

use serde::Deserialize;

/// The catalog compiled into the binary.
pub const DEFAULT_CATALOG: &str = include_str!("../../plans.toml");

/// Features the code asks for, with their kinds: a catalog must define them (others are free
/// to add).
pub const REQUIRED_FEATURES: &[(&str, FeatureKind)] = &[
    ("projects", FeatureKind::Limit),
    ("members", FeatureKind::Limit),
    ("active_shared_links", FeatureKind::Limit),
    ("invitations_per_month", FeatureKind::PeriodicLimit),
    ("guest_comments", FeatureKind::Boolean),
    ("edit_links", FeatureKind::Boolean),
    ("webhooks", FeatureKind::Boolean),
];

/// How a feature is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// On or off.
    Boolean,
    /// A cap on how many exist.
    Limit,
    /// A cap per billing period.
    PeriodicLimit,
}

/// A feature of the catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// How it is measured.
    pub kind: FeatureKind,
    /// Human label used in messages, e.g. "projects".
    pub label: String,
    /// For periodic limits: "month".
    #[serde(default)]
    pub period: Option<String>,
}

/// What a plan grants for one feature, as written in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Grant {
    /// A boolean feature.
    Flag(bool),
    /// A limit.
    Count(i64),
    /// The string "unlimited".
    Word(String),
}

/// A plan.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Stable key, e.g. "free".
    pub key: String,
    /// Display name, e.g. "Free".
    pub name: String,
    /// Higher is more.
    pub rank: i32,
    /// The plan new organizations start on.
    #[serde(default)]
    pub default: bool,
    /// Grants by feature name.
    pub features: BTreeMap<String, Grant>,
    /// Stripe price ids (`price_…`) that buy this plan: a subscription to one of them puts
    /// the organization on this plan.
    #[serde(default)]
    pub stripe_price_ids: Vec<String>,
}

/// The validated catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Features by name.
    pub features: BTreeMap<String, Feature>,
    /// Plans, ordered by rank once validated.
    pub plans: Vec<Plan>,
}

impl Catalog {
    /// Parses and validates a catalog. Errors are one readable paragraph (with the line for
    /// syntax errors).
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let mut c: Catalog = toml::from_str(text).map_err(|e| e.to_string())?;
        c.plans.sort_by_key(|p| p.rank);
        if c.plans.is_empty() {
            return Err("the catalog defines no plans".into());
        }
        if c.plans.iter().filter(|p| p.default).count() != 1 {
            return Err("exactly one plan must have `default = true`".into());
        }
        for (i, p) in c.plans.iter().enumerate() {
            if c.plans[..i].iter().any(|q| q.key == p.key) {
                return Err(format!("plan key {:?} is defined twice", p.key));
            }
            if c.plans[..i].iter().any(|q| q.rank == p.rank) {
                return Err(format!(
                    "plans {:?} and another share rank {}",
                    p.key, p.rank
                ));
            }
            for price in &p.stripe_price_ids {
                if let Some(q) = c.plans[..i]
                    .iter()
                    .find(|q| q.stripe_price_ids.contains(price))
                {
                    return Err(format!(
                        "Stripe price {price:?} is mapped to both {:?} and {:?}",
                        q.key, p.key
                    ));
                }
                if price.trim().is_empty()
                    || p.stripe_price_ids.iter().filter(|x| *x == price).count() > 1
                {
                    return Err(format!(
                        "plan {:?}: stripe_price_ids must be distinct, non-empty price ids",
                        p.key
                    ));
                }
            }
            for name in p.features.keys() {
                if !c.features.contains_key(name) {
                    return Err(format!(
                        "plan {:?} sets feature {name:?}, which is not defined under [features]",
                        p.key
                    ));
                }
            }
            for (name, f) in &c.features {
                let Some(g) = p.features.get(name) else {
                    return Err(format!("plan {:?} does not set feature {name:?}", p.key));
                };
                let ok = match (f.kind, g) {
                    (FeatureKind::Boolean, Grant::Flag(_)) => true,
                    (FeatureKind::Limit | FeatureKind::PeriodicLimit, Grant::Count(n)) => *n >= 0,
                    (FeatureKind::Limit | FeatureKind::PeriodicLimit, Grant::Word(w)) => {
                        w == "unlimited"
                    }
                    _ => false,
                };
                if !ok {
                    let want = match f.kind {
                        FeatureKind::Boolean => "true or false",
                        _ => "a non-negative integer or \"unlimited\"",
                    };
                    return Err(format!(
                        "plan {:?}, feature {name:?}: expected {want}, found {g:?}",
                        p.key
                    ));
                }
            }
        }
        for (name, kind) in REQUIRED_FEATURES {
            match c.features.get(*name) {
                Some(f) if f.kind == *kind => {}
                Some(_) => return Err(format!("feature {name:?} must be of kind {kind:?}")),
                None => return Err(format!("feature {name:?} is missing: kfactor enforces it")),
            }
        }
        for (name, f) in &c.features {
            match (f.kind, f.period.as_deref()) {
                (FeatureKind::PeriodicLimit, Some("month")) => {}
                (FeatureKind::PeriodicLimit, _) => {
                    return Err(format!(
                        "feature {name:?}: periodic limits need period = \"month\""
                    ))
                }
                (_, Some(_)) => {
                    return Err(format!(
                        "feature {name:?}: only periodic limits have a period"
                    ))
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// The plan new organizations start on.
    pub fn default_plan(&self) -> &Plan {
        self.plans.iter().find(|p| p.default).expect("validated")
    }

    /// A plan by key.
    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }

    /// The best plan bought by any of `prices` (Stripe price ids), if one is mapped.
    pub fn plan_for_prices<'a>(&self, prices: impl IntoIterator<Item = &'a str>) -> Option<&Plan> {
        prices
            .into_iter()
            .filter_map(|id| {
                self.plans
                    .iter()
                    .find(|p| p.stripe_price_ids.iter().any(|x| x == id))
            })
            .max_by_key(|p| p.rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_is_valid() {
        let c = Catalog::parse(DEFAULT_CATALOG).unwrap();
        assert_eq!(c.default_plan().key, "free");
        assert_eq!(c.plans.len(), 3);
        assert_eq!(
            c.plan("free").unwrap().features["projects"],
            Grant::Count(3)
        );
    }

    #[test]
    fn prices_map_to_one_plan_each() {
        let mapped = DEFAULT_CATALOG
            .replace(
                "key = \"pro\"",
                "key = \"pro\"\nstripe_price_ids = [\"price_pro_m\", \"price_pro_y\"]",
            )
            .replace(
                "key = \"business\"",
                "key = \"business\"\nstripe_price_ids = [\"price_biz\"]",
            );
        let c = Catalog::parse(&mapped).unwrap();
        assert_eq!(c.plan_for_prices(["price_pro_y"]).unwrap().key, "pro");
        assert_eq!(
            c.plan_for_prices(["price_other", "price_pro_m", "price_biz"])
                .unwrap()
                .key,
            "business",
            "the best mapped plan wins"
        );
        assert!(c.plan_for_prices(["price_other"]).is_none());
        let twice = mapped.replace("[\"price_biz\"]", "[\"price_pro_m\"]");
        let e = Catalog::parse(&twice).unwrap_err();
        assert!(e.contains("price_pro_m") && e.contains("both"), "{e}");
    }

    #[test]
    fn errors_are_readable() {
        let broken = DEFAULT_CATALOG.replace("projects = 3", "projects = \"lots\"");
        let e = Catalog::parse(&broken).unwrap_err();
        assert!(e.contains("\"free\"") && e.contains("projects"), "{e}");
        let e = Catalog::parse("plans = [").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
