"""Checks webhook deliveries with implementations that are not ours.

Run by tests/tests/webhooks.rs with DELIVERIES naming a JSON file: a list of
{"secret", "headers", "body"} as the receiver got them. Each must verify under Standard
Webhooks' reference library (webhook-id, webhook-timestamp, webhook-signature) and under
Greenlight's documented gl-signature check (base64 HMAC-SHA256 of the body, keyed with the
secret's bytes). Exits non-zero on the first that does not.
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
    try:
        Webhook(d["secret"]).verify(body, headers)
    except Exception as e:  # the library raises its own WebhookVerificationError
        sys.exit(f"delivery {i}: Standard Webhooks verification failed: {e!r}")
    mac = hmac.new(d["secret"].encode(), body, digestmod=hashlib.sha256)
    if base64.b64encode(mac.digest()).decode() != headers["gl-signature"]:
        sys.exit(f"delivery {i}: gl-signature does not verify")
    # A body changed in transit must fail both.
    tampered = body.replace(b"1", b"2", 1) if b"1" in body else body + b" "
    try:
        Webhook(d["secret"]).verify(tampered, headers)
        sys.exit(f"delivery {i}: a tampered body verified")
    except Exception:
        pass

print(f"verified {len(deliveries)} deliveries")
