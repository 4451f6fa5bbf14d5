#!/usr/bin/env python3
"""Times each field group of a platform growth call alone (5 runs each), against a running
kfactor serving a seed-demo database: bench/metrics_parts.py http://127.0.0.1:PORT/graphql"""
import json, sys, time, urllib.request, statistics
URL = sys.argv[1]
def gql(q, v=None, tok=None):
    req = urllib.request.Request(URL, data=json.dumps({"query": q, "variables": v or {}}).encode(),
        headers={"content-type": "application/json", **({"authorization": "Bearer " + tok} if tok else {})})
    return json.load(urllib.request.urlopen(req))
tok = gql('mutation { logIn(input: {email: "user0@demo.kfactor.test", password: "demo-password"}) { token } }')["data"]["logIn"]["token"]
import datetime
to = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
fr = to - datetime.timedelta(weeks=12)
v = {"f": fr.isoformat(), "t": to.isoformat()}
parts = {
 "headline": "signups cohortSize invitationsSent viralCoefficient",
 "bysource": "signupsBySource { source signups }",
 "inviteFunnel": "inviteFunnel { sent opened accepted activated }",
 "shareFunnel": "shareFunnel { linksCreated visits uniqueVisitors signups conversionRate }",
 "topInviters": "topInviters(limit: 10) { user { id name } invitationsSent accepted }",
 "surfaces": "surfaces { surface invitationsSent sharesCreated viralSignups }",
 "series": "series { periodStart signups viralSignups invitationsSent invitationsAccepted viralCoefficient }",
 "median": "medianViralCycleHours",
 "complete": "complete",
}
for name, f in parts.items():
    q = "query($f: DateTime!, $t: DateTime!) { growth(from: $f, to: $t, interval: WEEK) { %s } }" % f
    gql(q, v, tok)
    ts = []
    for _ in range(5):
        t = time.perf_counter(); r = gql(q, v, tok); ts.append((time.perf_counter() - t) * 1000)
        assert "errors" not in r, r
    print(f"part={name} median_ms={statistics.median(ts):.1f}")
