#!/usr/bin/env python3
"""Before bench/compare measures: every target answers every body of its rotation files with
the same data, without errors.

    check.py DIR NAME=URL:FILE_PREFIX ...     e.g. kf-pg=http://127.0.0.1:7102/graphql:kf
                                              (QQ in a URL stands for q1 or q2)

For each target and query, sends each line of DIR/<prefix>-q1.tsv and -q2.tsv once, turns the
answer into one canonical form (ids as bare hex, enums in lower case, members and projects
sorted by id, plans in kfactor's names), and requires, line by line, the same canonical answer
from every target, with 5 members and 10 projects (Q1) and a project with content (Q2). The
answer to line 1 must also match peer/expected-q1.json and expected-q2.json (PostGraphile 4's
answers to the fixed ids); the ceiling's must be byte-identical to them. Prints one line per
target and query on stderr; exits 1 on the first difference.
"""
import json
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KF_PLAN = {"free": "free", "pro": "pro", "team": "business", "enterprise": "business"}


def bare(i):
    # kfactor's "org_<hex>" or a hyphenated uuid -> 32 hex digits
    return i.split("_", 1)[-1].replace("-", "").lower()


def canon(query, doc):
    if doc.get("errors"):
        raise ValueError(f"errors: {doc['errors']}")
    (field, v), = doc["data"].items()
    if v is None:
        raise ValueError(f"{field} is null")
    if query == "q1":
        kf = "members" in v
        members = v["members" if kf else "membershipsByOrgId"]["nodes"]
        projects = v["projects" if kf else "projectsByOrganizationId"]["nodes"]
        plan = v["plan"]["key"] if kf else KF_PLAN[v["plan"]]
        out = {
            "id": bare(v["id"]), "name": v["name"], "plan": plan,
            "members": sorted((bare(u["id"]), m["role"].lower(), u["email"], u["name"])
                              for m in members for u in [m["user" if kf else "userByUserId"]]),
            "projects": sorted((bare(p["id"]), p["name"]) for p in projects),
        }
        if len(out["members"]) != 5 or len(out["projects"]) != 10:
            raise ValueError(f"{len(out['members'])} members, {len(out['projects'])} projects")
        return out
    p = v["project"]
    if not p or not p.get("content"):
        raise ValueError("no project content")
    return {"permission": v["permission"].lower(), "name": p["name"], "content": p["content"]}


def post(url, token, body):
    h = {"content-type": "application/json", "accept": "application/json"}
    if token != "-":
        h["authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=body.encode(), headers=h, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def main():
    d, specs = sys.argv[1], sys.argv[2:]
    targets = []
    for s in specs:
        name, rest = s.split("=", 1)
        url, prefix = rest.rsplit(":", 1)
        targets.append((name, url, prefix))
    ok = True
    for q in ("q1", "q2"):
        expected_raw = open(os.path.join(HERE, "peer", f"expected-{q}.json"), "rb").read()
        reference = None   # canonical answers of the first target, line by line
        for name, url, prefix in targets:
            lines = [l.rstrip("\n").split("\t", 1) for l in open(os.path.join(d, f"{prefix}-{q}.tsv"))]
            answers = []
            try:
                for i, (tok, body) in enumerate(lines):
                    raw = post(url.replace("QQ", q), tok, body)
                    if i == 0:
                        if name.startswith("ceil") and raw != expected_raw.rstrip(b"\n"):
                            raise ValueError(f"line 1 is not byte-identical to expected-{q}.json: {raw[:200]!r}")
                        if canon(q, json.loads(raw)) != canon(q, json.loads(expected_raw)):
                            raise ValueError(f"line 1 differs from expected-{q}.json: {raw[:300]!r}")
                    try:
                        answers.append(canon(q, json.loads(raw)))
                    except (ValueError, KeyError, TypeError) as e:
                        raise ValueError(f"line {i + 1}: {e}: {raw[:300]!r}")
                if reference is None:
                    reference = answers
                elif answers != reference:
                    bad = next(i for i, (a, b) in enumerate(zip(answers, reference)) if a != b)
                    raise ValueError(f"line {bad + 1} differs from {targets[0][0]}: {answers[bad]} != {reference[bad]}")
                print(f"check target={name} query={q} bodies={len(answers)} same_data=true", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - any failure is reported and fails the check
                print(f"check target={name} query={q} FAILED: {e}", file=sys.stderr)
                ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
