//! The layers flow one way (ARCHITECTURE.md): the rules know no transport and no worker, the
//! outbox sits below the rules, resolvers never reach the tables, leaves import nothing of the
//! crate. Read from the source itself, so a new import that breaks a rule fails here.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Crates and crate modules that `src/domain` must not name: transport, and the workers
/// that read what the rules wrote (`crate::digest` is the digest's scheduler, not
/// `domain::digest`).
const DOMAIN_MUST_NOT: &[&str] = &[
    "axum",
    "axum_extra",
    "async_graphql",
    "async_graphql_axum",
    "tower",
    "tower_http",
    "crate::http",
    "crate::graphql",
    "crate::webhooks",
    "crate::mailer",
    "crate::visits",
    "crate::digest",
    "crate::notifier",
    "crate::precompute",
    "crate::pubsub",
    "crate::cli",
];

/// The outbox is below the rules and the workers.
const OUTBOX_MUST_NOT: &[&str] = &[
    "crate::domain",
    "crate::http",
    "crate::graphql",
    "crate::webhooks",
    "crate::mailer",
    "crate::visits",
    "crate::digest",
    "crate::notifier",
    "crate::precompute",
    "crate::pubsub",
];

/// Resolvers and pages go through the domain, never straight to the tables.
const TRANSPORT_MUST_NOT: &[&str] = &["entity", "sea_orm", "crate::outbox", "crate::db"];

/// The transaction wrapper and the bus are infrastructure: nothing above them.
const DB_MUST_NOT: &[&str] = &[
    "crate::domain",
    "crate::outbox",
    "crate::http",
    "crate::graphql",
    "crate::webhooks",
    "crate::mailer",
    "crate::visits",
    "crate::pubsub",
];

#[test]
fn the_rules_import_no_transport_and_no_worker() {
    assert_layer("src/domain", DOMAIN_MUST_NOT);
}

#[test]
fn the_outbox_imports_nothing_above_it() {
    assert_layer("src/outbox", OUTBOX_MUST_NOT);
}

#[test]
fn resolvers_and_pages_never_reach_the_tables() {
    assert_layer("src/graphql", TRANSPORT_MUST_NOT);
    assert_layer("src/http", TRANSPORT_MUST_NOT);
}

#[test]
fn the_transaction_and_the_bus_import_nothing_above_them() {
    assert_layer("src/db.rs", DB_MUST_NOT);
    assert_layer("src/db", DB_MUST_NOT);
}

#[test]
fn leaves_import_nothing_of_the_crate() {
    for leaf in [
        "src/events.rs",
        "src/egress.rs",
        "src/crypto",
        "src/clock.rs",
        "src/config.rs",
        "src/config",
    ] {
        for file in rust_files(&root().join(leaf)) {
            let named = named_paths(&read(&file), &module_path(&file));
            let inner: Vec<_> = named.iter().filter(|n| n.starts_with("crate::")).collect();
            assert!(
                inner.is_empty(),
                "{} is a leaf but names {inner:?}",
                rel(&file)
            );
        }
    }
}

/// The scanner itself: it must see through `use` groups, `super::` that climbs to the crate
/// root and fully qualified calls, and must not be fooled by comments.
#[test]
fn the_scanner_finds_what_it_must() {
    let src = r#"
        //! Talks about `crate::mailer` in a comment only.
        use crate::{db::Tx, mailer::{self, enqueue}};
        use axum::Router;
        fn f() { crate::webhooks::ssrf::forbidden(ip); } // and crate::http here
        use super::super::visits::Visit;
        use super::ids::OrgId;
        let quote = '"'; let s = "crate::http, inside a string"; crate::pubsub::listen();
    "#;
    let named = named_paths(src, &["domain".into(), "sharing".into()]);
    for want in [
        "crate::db",
        "crate::mailer",
        "axum",
        "crate::webhooks",
        "crate::visits",
        "crate::pubsub",
    ] {
        assert!(named.contains(want), "missed {want} in {named:?}");
    }
    assert!(
        !named.contains("crate::http"),
        "a comment or string counted: {named:?}"
    );
    assert!(
        !named.contains("crate::ids"),
        "super:: resolved wrongly: {named:?}"
    );
    // From `src/domain/mod.rs`, one `super::` is already the crate root.
    let named = named_paths("use super::{pubsub::Bus, db::Db};", &["domain".into()]);
    assert!(named.contains("crate::pubsub"), "{named:?}");
}

fn assert_layer(dir: &str, forbidden: &[&str]) {
    let files = rust_files(&root().join(dir));
    assert!(
        !files.is_empty() || dir.ends_with(".rs"),
        "{dir} has no Rust files"
    );
    let mut broken = Vec::new();
    for file in files {
        let named = named_paths(&read(&file), &module_path(&file));
        for f in forbidden {
            if named
                .iter()
                .any(|n| n == f || n.starts_with(&format!("{f}::")))
            {
                broken.push(format!("{} -> {f}", rel(&file)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports that break the layering (see ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every `.rs` file at `p` (a file or a directory, recursively); none if it does not exist.
fn rust_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module a file defines, from the crate root: `src/domain/mod.rs` is `[domain]`,
/// `src/domain/accounts/confirm.rs` is `[domain, accounts, confirm]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root().join("src")).expect("under src/");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// What a source file names outside itself: `crate::x` for each top-level module `x` of the
/// crate it reaches (through `crate::`, or `super::` that climbs to the root), and the bare
/// first segment of every other path (external crates such as `axum`, `entity`).
fn named_paths(src: &str, module: &[String]) -> BTreeSet<String> {
    let code = strip_comments(src);
    let bytes = code.as_bytes();
    let mut named = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        // A path starts at an identifier not preceded by `::` or another identifier char.
        let starts = is_ident(bytes[i])
            && (i == 0 || (!is_ident(bytes[i - 1]) && !code[..i].ends_with("::")));
        if !starts {
            i += 1;
            continue;
        }
        let (segments, end) = path_at(&code, i);
        i = end.max(i + 1);
        if segments.len() < 2 && !code[end..].starts_with("::{") {
            continue;
        }
        let supers = segments.iter().take_while(|s| *s == "super").count();
        let at_root = segments[0] == "crate" || (supers > 0 && supers >= module.len());
        if at_root {
            let skip = if segments[0] == "crate" { 1 } else { supers };
            match segments.get(skip) {
                Some(top) => {
                    named.insert(format!("crate::{top}"));
                }
                None => {
                    for top in group_heads(&code[end..]) {
                        named.insert(format!("crate::{top}"));
                    }
                }
            }
        } else if supers == 0 && segments[0] != "self" {
            named.insert(segments[0].clone());
        }
    }
    named
}

/// The `::`-separated identifiers of the path starting at `i`, and where it ends (before a
/// trailing `::{` group, if any).
fn path_at(code: &str, mut i: usize) -> (Vec<String>, usize) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    loop {
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        segments.push(code[start..i].to_string());
        if code[i..].starts_with("::") && code[i + 2..].starts_with(is_ident_char) {
            i += 2;
        } else {
            return (segments, i);
        }
    }
}

/// The first segment of each item of the `::{ a::b, c, d::{..} }` group at the start of
/// `rest`.
fn group_heads(rest: &str) -> Vec<String> {
    let Some(body) = rest.strip_prefix("::{") else {
        return Vec::new();
    };
    let (mut depth, mut heads, mut item_start) = (1, Vec::new(), true);
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if item_start && is_ident_char(c) => {
                let end = body[at..]
                    .find(|c: char| !is_ident_char(c))
                    .map_or(body.len(), |e| at + e);
                let head = &body[at..end];
                if head != "self" {
                    heads.push(head.to_string());
                }
                item_start = false;
                while chars.peek().is_some_and(|(i, _)| *i < end) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    heads
}

/// The source without comments and without the contents of string and character literals,
/// so prose and messages that mention a module do not count as naming it. Line breaks are
/// kept.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.extend(rest[..end].bytes().filter(|c| *c == b'\n'));
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|c| *c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.extend(rest[..end].bytes().filter(|c| *c == b'\n'));
            out.push(b' ');
            i += end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.extend(src[i..j.min(b.len())].bytes().filter(|c| *c == b'\n'));
            out.push(b' ');
            i = j + 1;
        } else if b[i] == b'\'' && (rest.get(2..3) == Some("'") || rest.starts_with("'\\")) {
            // A character literal ('"', '\n', '\''); a lifetime has no closing quote.
            let skip = if rest.starts_with("'\\") { 3 } else { 2 };
            let end = rest[skip..].find('\'').map_or(rest.len(), |e| e + skip + 1);
            out.push(b' ');
            i += end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
