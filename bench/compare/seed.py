#!/usr/bin/env python3
"""The peer dataset (peer/seed.sql) in kfactor's own schema, and the request bodies of every
target, for bench/compare. Python standard library only, plus the psql client for PostgreSQL.

    seed.py sqlite FILE --secret S     # rows into a migrated SQLite file (`kfactor migrate`)
    seed.py pg URL --secret S          # rows into a migrated PostgreSQL database
    seed.py bodies DIR --secret S      # the rotation files of every target into DIR

The rows are those of peer/seed.sql, row for row: organization n is md5('org-n') (as a uuid)
named 'Organization n', user n is md5('user-n') with the email 'user{n}@example.com', users
5k+1..5k+5 are the members of organization k+1 (the first the owner, the second an admin),
project n is md5('project-n') of organization (n-1)/10+1 with repeat(md5('content-n'), 16) as
its content, shared link n is md5('link-n') on project ((n*7919) % 100000) + 1, created by a
member of that project's organization, with the peer's permission and timestamps. So each
kfactor answer carries the same data as PostGraphile's (ids in kfactor's `org_<hex>` form,
enums in upper case); `run` checks that before it measures. What kfactor has and the peer has
not: one Argon2 password hash for every user (nobody logs in; the Q1 requests use sessions),
the plans 'team' and 'enterprise' become kfactor's 'business', a session for the owner of each
of the 100 organizations Q1 rotates over (tokens derived from the organization number, so
`bodies` needs no database), and every link is ANYONE with `token_version` 1.

Stored forms (checked against migration/src and entity/src, 2026-12-04): uuids are 16-byte
blobs on SQLite and `uuid` on PostgreSQL; timestamps RFC 3339 text on SQLite (what sqlx
writes for chrono's DateTime<Utc>); enums their lower-case stored strings (`PROJECT` for the
resource type); a session stores hex(sha256(token)); a link's token is
base64url-no-pad(id ‖ HMAC-SHA256(secret, "kfactor.shared_link.v1" ‖ id ‖ i32be(version))).

Rotation files (one request a line, "bearer-token-or-<TAB>JSON body", for rotate.lua):
  pgl-q1.tsv, pgl-q2.tsv   PostGraphile (4 and 5), the peer's 100 ids per query
  lim-q1.tsv, lim-q2.tsv   the ceiling server (bench/compare/limit)
  kf-q1.tsv, kf-q2.tsv     kfactor (Q1 as the organization's owner; Q2 as a guest)
Q1 rotates over organizations 1, 101, ..., 9901; Q2 over links 1, 201, ..., 19801 (the peer's
make_rotate.py). Line 1 of each file is the fixed id of the peer's q1.json / q2.json.
"""
import argparse
import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import uuid

ORGS, USERS_PER_ORG, PROJECTS_PER_ORG, LINKS = 10_000, 5, 10, 20_000
# One Argon2id hash for everyone (of an unused password): hashing 50,000 passwords would take
# minutes and nothing in the comparison logs in.
HASH = "$argon2id$v=19$m=19456,t=2,p=1$qCedVMeJAW3Bnq466Zk5Tw$L8jxwHlQlszQoaVCIbolv+0lXuFG9E8Q/HMgDJT8l+M"
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
PLANS = ["free", "free", "free", "pro", "pro", "team", "enterprise"]
KF_PLAN = {"free": "free", "pro": "pro", "team": "business", "enterprise": "business"}
SOURCES = ["organic", "paid_search", "referral", "shared_link", "content"]
KF_SOURCE = {"organic": "organic", "invite": "invite", "paid_search": "paid", "referral": "referral",
             "shared_link": "share", "content": "organic"}
PERMISSIONS = ["view", "view", "comment", "edit"]
Q1_ORGS = range(1, ORGS + 1, 100)
Q2_LINKS = range(1, LINKS + 1, 200)

PGL_Q1 = ("query Q1($id: UUID!) { organizationById(id: $id) { id name plan membershipsByOrgId { nodes { role "
          "userByUserId { id email name } } } projectsByOrganizationId { nodes { id name } } } }")
PGL_Q2 = ("query Q2($tokenHash: String!) { sharedLinkByTokenHash(tokenHash: $tokenHash) { permission "
          "project { name content } } }")
KF_Q1 = ("query Q1($id: ID!) { organization(id: $id) { id name plan { key } members(first: 5) { nodes { role "
         "user { id email name } } } projects(first: 10) { nodes { id name } } } }")
KF_Q2 = "query Q2($t: String!) { sharedLink(token: $t) { permission project { name content } } }"


def md5_uuid(s):
    return uuid.UUID(bytes=hashlib.md5(s.encode()).digest())


def ts(t):
    # sqlx's form for DateTime<Utc> (RFC 3339, "+00:00"); PostgreSQL parses it too.
    return t.isoformat()


def session_token(org_n):
    # The shape of a real API session token (kfs_ + 43 base64url characters), derived so that
    # `bodies` and the seeded rows agree without sharing state.
    raw = hashlib.sha256(f"bench-compare-session-{org_n}".encode()).digest()
    return "kfs_" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def link_token(secret, link_id, version=1):
    mac = hmac.new(secret.encode(), b"kfactor.shared_link.v1" + link_id.bytes + struct.pack(">i", version),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(link_id.bytes + mac).rstrip(b"=").decode()


def link_project(n):
    return (n * 7919) % 100_000 + 1


def rows(now):
    """Every table's rows as tuples of Python values (uuid.UUID, datetime, str, int, None)."""
    minutes = lambda m: dt.timedelta(minutes=m)
    orgs, users, mems, projs, links, sess = [], [], [], [], [], []
    for n in range(1, ORGS + 1):
        t = EPOCH + minutes(37 * n)
        orgs.append((md5_uuid(f"org-{n}"), f"Organization {n}", "any_member", KF_PLAN[PLANS[n % 7]], t, t))
    for n in range(1, ORGS * USERS_PER_ORG + 1):
        k = (n - 1) // 5          # the organization's index, 0-based
        first = k * 5 + 1         # its owner
        invited = (n - 1) % 5 != 0 and n % 5 in (0, 2, 3)
        source = "invite" if invited else SOURCES[n % 5]
        t = EPOCH + minutes(37 * k) + dt.timedelta(days=(n - 1) % 5)
        org = md5_uuid(f"org-{k + 1}")
        users.append((md5_uuid(f"user-{n}"), f"user{n}@example.com", f"User {n}", HASH, KF_SOURCE[source],
                      md5_uuid(f"user-{first}") if invited else None, f"bench{n:06d}", t, org))
        role = {0: "owner", 1: "admin"}.get((n - 1) % 5, "member")
        mems.append((md5_uuid(f"membership-{n}"), org, md5_uuid(f"user-{n}"), role, t))
    for n in range(1, ORGS * PROJECTS_PER_ORG + 1):
        k = (n - 1) // 10
        t = EPOCH + minutes(37 * k) + dt.timedelta(hours=3 * ((n - 1) % 10))
        content = hashlib.md5(f"content-{n}".encode()).hexdigest() * 16
        projs.append((md5_uuid(f"project-{n}"), md5_uuid(f"org-{k + 1}"), f"Project {n}", content,
                      md5_uuid(f"user-{k * 5 + 1}"), t, t))
    for n in range(1, LINKS + 1):
        p = link_project(n)
        k = (p - 1) // 10
        counted = n % 3 != 0
        first_at = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc) + minutes(5 * n) if counted else None
        last_at = dt.datetime(2024, 6, 2, tzinfo=dt.timezone.utc) + minutes(5 * n) if counted else None
        links.append((md5_uuid(f"link-{n}"), md5_uuid(f"org-{k + 1}"), "PROJECT", md5_uuid(f"project-{p}"),
                      PERMISSIONS[n % 4], "anyone", md5_uuid(f"user-{k * 5 + 1 + n % 5}"), 1,
                      dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc) if n % 4 == 0 else None,
                      dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc) + minutes(5 * n),
                      n % 97 if counted else 0, 1 if counted else 0, first_at, last_at))
    for n in Q1_ORGS:
        tok = session_token(n)
        sess.append((md5_uuid(f"session-{n}"), md5_uuid(f"user-{(n - 1) * 5 + 1}"),
                     hashlib.sha256(tok.encode()).hexdigest(), now, now, now + dt.timedelta(days=3650), "api"))
    return {
        "organizations": ("id,name,invite_policy,plan_key,billing_anchor,created_at", orgs),
        "users": ("id,email,name,password_hash,acquisition_source,invited_by_user_id,referral_code,created_at,"
                  "active_organization_id", users),
        "memberships": ("id,organization_id,user_id,role,joined_at", mems),
        "projects": ("id,organization_id,name,content,created_by_user_id,created_at,updated_at", projs),
        "shared_links": ("id,organization_id,resource_type,resource_id,permission,audience,created_by_user_id,"
                         "token_version,expires_at,created_at,access_count,unique_visitors,first_accessed_at,"
                         "last_accessed_at", links),
        "sessions": ("id,user_id,token_hash,created_at,last_used_at,expires_at,kind", sess),
    }


def seed_sqlite(path, tables):
    def enc(v):
        if isinstance(v, uuid.UUID):
            return v.bytes
        if isinstance(v, dt.datetime):
            return ts(v)
        return v
    db = sqlite3.connect(path)
    with db:
        for table, (cols, data) in tables.items():
            ph = ",".join("?" * len(cols.split(",")))
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({ph})", ([enc(v) for v in r] for r in data))
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def seed_pg(url, tables):
    def enc(v):
        if v is None:
            return r"\N"
        if isinstance(v, dt.datetime):
            return ts(v)
        return str(v)   # uuid.UUID -> hyphenated text; no value here has a tab or newline
    for table, (cols, data) in tables.items():
        buf = io.StringIO()
        for r in data:
            buf.write("\t".join(enc(v) for v in r) + "\n")
        subprocess.run(["psql", "-X", "-q", url, "-v", "ON_ERROR_STOP=1", "-c", f"COPY {table}({cols}) FROM STDIN"],
                       input=buf.getvalue(), text=True, check=True)
    subprocess.run(["psql", "-X", "-q", url, "-c", "VACUUM ANALYZE"], check=True)


def write_bodies(out, secret):
    os.makedirs(out, exist_ok=True)
    j = lambda d: json.dumps(d, separators=(",", ":"))
    q1_ids = [md5_uuid(f"org-{n}") for n in Q1_ORGS]
    q2_hashes = [hashlib.sha256(f"link-{n}".encode()).hexdigest() for n in Q2_LINKS]
    files = {
        "pgl-q1.tsv": [("-", {"query": PGL_Q1, "variables": {"id": str(i)}}) for i in q1_ids],
        "pgl-q2.tsv": [("-", {"query": PGL_Q2, "variables": {"tokenHash": h}}) for h in q2_hashes],
        "lim-q1.tsv": [("-", {"id": str(i)}) for i in q1_ids],
        "lim-q2.tsv": [("-", {"tokenHash": h}) for h in q2_hashes],
        "kf-q1.tsv": [(session_token(n), {"query": KF_Q1, "variables": {"id": "org_" + i.hex}})
                      for n, i in zip(Q1_ORGS, q1_ids)],
        "kf-q2.tsv": [("-", {"query": KF_Q2, "variables": {"t": link_token(secret, md5_uuid(f"link-{n}"))}})
                      for n in Q2_LINKS],
    }
    for name, lines in files.items():
        with open(os.path.join(out, name), "w") as f:
            for tok, body in lines:
                f.write(f"{tok}\t{j(body)}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["sqlite", "pg", "bodies"])
    ap.add_argument("where", help="SQLite file, PostgreSQL URL, or the bodies' directory")
    ap.add_argument("--secret", required=True, help="the KFACTOR_SECRET the server runs with")
    a = ap.parse_args()
    if a.what == "bodies":
        write_bodies(a.where, a.secret)
        return
    tables = rows(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    (seed_sqlite if a.what == "sqlite" else seed_pg)(a.where, tables)
    print(f"seeded {a.where if a.what == 'sqlite' else 'PostgreSQL'}: "
          + " ".join(f"{t}={len(d)}" for t, (_, d) in tables.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
