#!/usr/bin/env python3
"""Sums a flat perf profile by what the time went to.

    perf report -i perf.data --no-children --stdio --sort dso,sym -g none | perf_buckets.py [TOP]

Reads perf's "self" lines ("  12.34%  kfactor  [.] symbol") and prints the TOP (25) symbols,
then one `bucket=… self_pct=…` line per bucket: the kernel (sockets, syscalls, scheduling), the
SQL driver (sqlx, SeaORM, SQLite itself), GraphQL (async-graphql's parser, validation and
execution), JSON (serde_json), the allocator (jemalloc, libc malloc), memcpy and friends,
pthread mutexes (jemalloc's and SQLite's locks), tokio, HTTP (hyper, axum, tower), crypto (SHA-256/HMAC, Argon2), tracing and metrics, kfactor's own
code, the rest of Rust's std/core, and what matched nothing. A symbol goes to the first bucket that matches,
so with inlining the buckets are approximate: read them with the top symbols.
"""
import re
import sys

BUCKETS = [
    ("kernel", r"^\[k\]|\[kernel|vmlinux"),
    ("sql_driver", r"sqlx|sea_orm|sea_query|sqlite3|libsqlite|sqlite|postgres|pgwire|\bpg_"),
    ("graphql", r"async_graphql|graphql|pest"),
    ("json", r"serde_json|serde::|ryu::|itoa::"),
    ("allocator", r"_rjem|\bje_|jemalloc|malloc|\bfree\b|cfree|realloc|calloc|__libc_free|_int_free|_int_malloc|posix_memalign"),
    ("memcpy_memset", r"mem(cpy|move|set|cmp)|__memcpy|__memmove|__memset|__memcmp|strlen"),
    ("pthread_locks", r"pthread_mutex|__lll_lock|pthread_cond"),
    ("crypto", r"sha2|hmac|argon2|blake2|subtle|sha256|Sha256|digest::"),
    ("tokio", r"tokio|mio::|parking_lot|futures_util|futures_core"),
    ("http", r"hyper|axum|tower|http::|httparse|h2::|bytes::"),
    ("tracing_metrics", r"tracing|metrics"),
    ("kfactor", r"kfactor::|entity::"),
    ("rust_std", r"core::|alloc::|std::|hashbrown|<.*as core"),
]


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    rows = []
    for line in sys.stdin:
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*)$", line)
        if m:
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            rows.append((pct, dso, kind, sym))
    totals = {}
    for pct, dso, kind, sym in rows:
        # The symbol only (and [k]): every symbol of the kfactor binary has dso "kfactor".
        key = f"{kind} {sym}"
        name = next((b for b, rx in BUCKETS if re.search(rx, key)), "other")
        totals[name] = totals.get(name, 0.0) + pct
    for pct, dso, kind, sym in sorted(rows, reverse=True)[:top]:
        print(f"{pct:6.2f}%  {dso:<22.22} {kind} {sym[:110]}")
    for name, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"bucket={name} self_pct={pct:.1f}")


if __name__ == "__main__":
    main()
