"""Verifies one webhook delivery with the third-party `standardwebhooks` package.

Reads {"secret", "headers", "body"} as JSON on stdin. Prints "ok" (exit 0) when the
signature verifies, "invalid" (exit 1) when it does not, "missing" (exit 2) when the
package is not installed.
"""
import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    print("missing")
    sys.exit(2)

msg = json.load(sys.stdin)
try:
    Webhook(msg["secret"]).verify(msg["body"], msg["headers"])
except WebhookVerificationError as e:
    print("invalid")
    print(e, file=sys.stderr)
    sys.exit(1)
print("ok")
