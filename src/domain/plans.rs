//! The plan catalog (`plans.toml`): plans, their features and limits. Loaded and validated
//! once at start-up; `kfactor plans check` runs the same validation.
use std::collections::BTreeMap;

use serde::Deserialize;

/// The catalog compiled into the binary.
pub const DEFAULT_CATALOG: &str = include_str!("../../plans.toml");

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
    fn errors_are_readable() {
        let broken = DEFAULT_CATALOG.replace("projects = 3", "projects = \"lots\"");
        let e = Catalog::parse(&broken).unwrap_err();
        assert!(e.contains("\"free\"") && e.contains("projects"), "{e}");
        let e = Catalog::parse("plans = [").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
