//! Where a setting came from, in the words an operator uses: a typo in `kfactor.toml` is
//! refused with the closest valid key, and every error names the setting the way it was
//! given (`` `bind` in kfactor.toml `` or `KFACTOR_BIND`) with a message free of Rust type
//! names.
use std::path::Path;

use figment::{
    error::{Actual, Kind},
    providers::{Format, Toml},
    Figment, Provider, Source,
};

use super::ConfigError;

/// Refuses a key of the TOML file that is not a setting, naming the closest one.
pub(super) fn check_known_keys(file: &Path, known: &[String]) -> Result<(), ConfigError> {
    if !file.exists() {
        return Ok(());
    }
    let data = Toml::file(file).data().map_err(|e| ConfigError {
        key: "config".into(),
        given_as: file.display().to_string(),
        message: format!("is not valid TOML: {}", e.kind),
    })?;
    for dict in data.values() {
        // BTreeMap order: the first unknown key alphabetically, the same on every run.
        if let Some(unknown) = dict.keys().find(|k| !known.contains(k)) {
            let message = match closest(unknown, known) {
                Some(near) => format!("unknown setting; did you mean `{near}`?"),
                None => "unknown setting; the README's configuration table lists them".into(),
            };
            return Err(ConfigError {
                key: unknown.clone(),
                given_as: format!("`{unknown}` in {}", file.display()),
                message,
            });
        }
    }
    Ok(())
}

/// The known key nearest to `key` (edit distance at most a third of its length, at least 2).
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let budget = (key.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (distance(key, k), k.as_str()))
        .filter(|(d, _)| *d <= budget)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// How to name `key` to whoever set it: where its value came from (`file` as it was named,
/// not the absolute path figment resolved).
pub(super) fn describe(figment: &Figment, file: &Path, key: &str) -> String {
    match figment.find_metadata(key).and_then(|m| m.source.as_ref()) {
        Some(Source::File(_)) => format!("`{key}` in {}", file.display()),
        _ => format!("KFACTOR_{}", key.to_uppercase()),
    }
}

/// A figment extraction error as a setting and a message without Rust type names.
pub(super) fn extraction(figment: &Figment, file: &Path, e: figment::Error) -> ConfigError {
    let key = e.path.first().cloned().unwrap_or_else(|| "config".into());
    let message = match &e.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("must be {}, not {}", plain(expected), shown(actual))
        }
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "is out of range".into(),
        other => other.to_string(),
    };
    ConfigError {
        given_as: describe(figment, file, &key),
        key,
        message,
    }
}

/// What serde calls the expected type, for a human.
fn plain(expected: &str) -> &str {
    match expected.trim_start_matches("a ").trim_start_matches("an ") {
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of at least 0",
        "f32" | "f64" => "a number",
        "bool" | "boolean" => "true or false",
        "string" => "text",
        _ => "a valid value",
    }
}

/// The value given, without echoing it (it may be a secret).
fn shown(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "true/false",
        Actual::Signed(_) | Actual::Unsigned(_) => "a number",
        Actual::Float(_) => "a fractional number",
        Actual::Char(_) | Actual::Str(_) => "text",
        Actual::Map => "a table",
        Actual::Seq => "a list",
        _ => "that",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_key_is_suggested_and_far_ones_are_not() {
        let known: Vec<String> = ["database_url", "bind", "secret"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("databse_url", &known), Some("database_url"));
        assert_eq!(closest("bnd", &known), Some("bind"));
        assert_eq!(closest("completely_else", &known), None);
        assert_eq!(plain("i64"), "a whole number");
        assert_eq!(plain("usize"), "a whole number of at least 0");
    }
}
