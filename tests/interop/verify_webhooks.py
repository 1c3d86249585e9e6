"""Checks webhook deliveries with implementations that are not ours.

Run by tests/tests/webhooks.rs with DELIVERIES naming a JSON file: a list of
{"secret", "headers", "body", "valid"} as the receiver got them. Each must verify under
Standard Webhooks' reference library (webhook-id, webhook-timestamp, webhook-signature) and
under Greenlight's documented gl-signature check (base64 HMAC-SHA256 of the body, keyed
with the secret's bytes) -- or, where "valid" is false (a secret rotated away), fail both.
Exits non-zero on the first that does not do what it should.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from standardwebhooks.webhooks import Webhook

with open(os.environ["DELIVERIES"]) as f:
    deliveries = json.load(f)

for i, d in enumerate(deliveries):
    body = d["body"].encode()
    headers = d["headers"]
    mac = hmac.new(d["secret"].encode(), body, digestmod=hashlib.sha256)
    gl_ok = base64.b64encode(mac.digest()).decode() == headers["gl-signature"]
    if not d.get("valid", True):
        try:
            Webhook(d["secret"]).verify(body, headers)
            sys.exit(f"delivery {i}: verified under a secret rotated away")
        except Exception:
            pass
        if gl_ok:
            sys.exit(f"delivery {i}: gl-signature verified under a secret rotated away")
        continue
    try:
        Webhook(d["secret"]).verify(body, headers)
    except Exception as e:  # the library raises its own WebhookVerificationError
        sys.exit(f"delivery {i}: Standard Webhooks verification failed: {e!r}")
    if not gl_ok:
        sys.exit(f"delivery {i}: gl-signature does not verify")
    # A body changed in transit must fail both.
    tampered = body.replace(b"1", b"2", 1) if b"1" in body else body + b" "
    try:
        Webhook(d["secret"]).verify(tampered, headers)
        sys.exit(f"delivery {i}: a tampered body verified")
    except Exception:
        pass

print(f"verified {len(deliveries)} deliveries")
