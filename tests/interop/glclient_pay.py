"""Greenlight's published Python client pays through a Skylight node-host.

Run by tests/tests/glclient_interop.rs once signer-cli signs for the node whose credentials
gl-client made (GLCLIENT_CREDS). gl-client's Pay carries gl-client's own rune; the signer
approves the payment only if it accepts that rune, so a Pay that gets as far as looking for
a route (PAY_BOLT11 names a payee nobody can reach) was approved. Prints what happened.
"""
import os
import sys
import time

from glclient import Credentials, Scheduler

with open(os.environ["GLCLIENT_CREDS"], "rb") as f:
    creds = Credentials.from_bytes(f.read())
node = Scheduler("regtest", creds).node()

deadline = time.time() + 60
while True:
    info = node.get_info()
    if not info.warning_lightningd_sync:
        break
    if time.time() > deadline:
        sys.exit(f"the node did not start with its signer: {info}")
    time.sleep(0.2)
assert bytes(info.id) == bytes(creds.node_id()), info

try:
    node.pay(os.environ["PAY_BOLT11"], retry_for=1)
    sys.exit("the payment to an unreachable payee succeeded")
except ValueError as e:
    print("pay refused:", e)
