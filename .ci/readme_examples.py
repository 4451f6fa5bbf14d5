#!/usr/bin/env python3
"""Runs every ```graphql example of README.md against a fresh server, as a new user would.

Each operation of each block is sent on its own (ids such as "org_…" are replaced with real
ones of a fresh user, "…" with a placeholder); an operation that changes who is signed in
(log out, delete the account…) gets a user of its own. The run fails if any example is
refused as a document (GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED: a field, argument or
type the schema does not have), and if an example of a mutation that can hit a plan limit
does not select `userErrors { upgrade }`.

Usage: readme_examples.py PATH_TO_KFACTOR_BINARY
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFUSED = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}
# Mutations that a plan limit or feature flag can refuse: their examples show the upgrade.
# (guestComment and guestEdit can be refused too, but a guest's errors never carry an upgrade
# prompt: its URL names the organization, and a guest cannot act on it.)
LIMITED = {"createProject", "createInvitations", "createSharedLink", "createWebhookEndpoint"}
# Operations after which the caller's token no longer works.
ENDS_SESSION = ("logOut", "logOutAll", "deleteAccount", "revokeSession", "changePassword", "resetPassword")


def blocks(readme):
    return re.findall(r"```graphql\n(.*?)```", readme, re.S)


def strip_comments(text):
    out = []
    for line in text.splitlines():
        in_str = False
        for i, c in enumerate(line):
            if c == '"':
                in_str = not in_str
            elif c == "#" and not in_str:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def operations(block):
    """Splits a block into its top-level operations (brace depth 0)."""
    text, ops, depth, start = strip_comments(block), [], 0, None
    in_str = False
    for i, c in enumerate(text):
        if c == '"':
            in_str = not in_str
        if in_str:
            continue
        if depth == 0 and start is None and not c.isspace():
            start = i
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                ops.append(text[start : i + 1].strip())
                start = None
    return ops


class Server:
    def __init__(self, binary):
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        self.port = port.getsockname()[1]
        port.close()
        self.dir = tempfile.mkdtemp()
        env = dict(os.environ)
        env.update({
            "KFACTOR_DATABASE_URL": f"sqlite://{self.dir}/kfactor.db?mode=rwc",
            "KFACTOR_BIND": f"127.0.0.1:{self.port}",
            "KFACTOR_LOG": "error",
            "KFACTOR_LIMIT_SIGNUPS_PER_IP": "off",
        })
        self.proc = subprocess.Popen([binary, "serve"], cwd=self.dir, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        sys.exit("the server did not answer /healthz within 60 s")

    def gql(self, query, variables=None, token=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/graphql-response+json"},
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def user(self, n):
        """A fresh user with a project, an invitation and a shared link: the ids to substitute."""
        email = f"reader{n}@example.com"
        p = self.gql('mutation($e: String!) { signUp(input: {email: $e, password: "correct horse battery", name: "Reader"}) { token user { id } organization { id } userErrors { code message } } }', {"e": email})["data"]["signUp"]
        assert p["token"], p
        t, org = p["token"], p["organization"]["id"]
        prj = self.gql('mutation($o: ID!) { createProject(input: {organizationId: $o, name: "Example"}) { project { id } } }', {"o": org}, t)["data"]["createProject"]["project"]["id"]
        inv = self.gql('mutation($o: ID!) { createInvitations(input: {organizationId: $o, emails: ["someone@example.com"]}) { invitations { id } } }', {"o": org}, t)["data"]["createInvitations"]["invitations"][0]["id"]
        lnk = self.gql('mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW}) { sharedLink { id } } }', {"p": prj}, t)["data"]["createSharedLink"]["sharedLink"]["id"]
        return t, {"org_…": org, "usr_…": p["user"]["id"], "prj_…": prj, "inv_…": inv, "lnk_…": lnk}


def main():
    binary = sys.argv[1]
    readme = open(os.path.join(ROOT, "README.md")).read()
    server = Server(binary)
    failures, count = [], 0
    try:
        shared_token, ids = server.user(0)
        for b, block in enumerate(blocks(readme), 1):
            for op in operations(block):
                count += 1
                token, use = shared_token, ids
                if any(re.search(rf"\b{f}\b", op) for f in ENDS_SESSION):
                    token, use = server.user(count)
                doc = op
                for placeholder, real in use.items():
                    doc = doc.replace(f'"{placeholder}"', json.dumps(real))
                doc = doc.replace('"…"', '"placeholder"').replace('"ses_…"', '"ses_0"')
                variables = {"org": use["org_…"], "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
                body = server.gql(doc, variables, token)
                codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
                if codes & REFUSED:
                    failures.append(f"block {b}: {op[:80]!r}: {body['errors'][0]['message']}")
                head = re.match(r"\s*mutation\b[^{]*\{\s*(\w+)", op)
                if head and head.group(1) in LIMITED and "upgrade" not in op:
                    failures.append(f"block {b}: {head.group(1)} can hit a plan limit; select userErrors {{ upgrade {{ message url }} }}")
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=30)
    for f in failures:
        print("FAIL", f)
    print(f"{count} README operations run, {len(failures)} failing")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
