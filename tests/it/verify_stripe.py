"""Checks Stripe-Signature headers with the official `stripe` package's verifier.

Reads {"secret", "cases": [{"payload", "header"}]} as JSON on stdin and prints a JSON list
with one boolean per case (whether `stripe.WebhookSignature.verify_header` accepts it, with
Stripe's default tolerance of 300 s); exit 0. Prints "missing" (exit 2) when the package is
not installed.
"""
import json
import sys

try:
    import stripe
except ImportError:
    print("missing")
    sys.exit(2)

Error = getattr(stripe, "SignatureVerificationError", None) or stripe.error.SignatureVerificationError

msg = json.load(sys.stdin)
results = []
for case in msg["cases"]:
    try:
        stripe.WebhookSignature.verify_header(case["payload"], case["header"], msg["secret"], tolerance=300)
        results.append(True)
    except Error as e:
        print(e, file=sys.stderr)
        results.append(False)
print(json.dumps(results))
