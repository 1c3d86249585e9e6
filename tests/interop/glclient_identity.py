"""Greenlight's published Python client (gl-client) against a Skylight scheduler.

Run by tests/tests/glclient_interop.rs with the GL_* variables pointing at the scheduler and
two invite codes in INVITE_1 and INVITE_2. Exits non-zero on the first surprise.
"""
import os
import sys

import glclient
from glclient import Credentials, Scheduler, Signer

GREENLIGHT_VECTOR_NODE = "02058e8b6c2ad363ec59aa136429256d745164c2bdc87f98f0a68690ec2c5c9b0b"


def refused(call, code):
    try:
        call()
    except ValueError as e:
        if f"status: {code}" not in str(e):
            sys.exit(f"expected {code}, got: {e}")
        return str(e)
    sys.exit(f"expected {code}, but the call succeeded")


nobody = Credentials()  # GL_NOBODY_CRT, GL_NOBODY_KEY, GL_CA_CRT
signer = Signer(bytes(32), "regtest", nobody)
assert signer.node_id().hex() == GREENLIGHT_VECTOR_NODE, signer.node_id().hex()
scheduler = Scheduler("regtest", nobody)

msg = refused(lambda: scheduler.register(signer), "PermissionDenied")
assert "invite code" in msg, msg

res = scheduler.register(signer, invite_code=os.environ["INVITE_1"])
# The scheduler signed the client's CSR and sent no key; gl-client put its own key here.
assert "PRIVATE KEY" in res.device_key, "gl-client fills in the key it made itself"
creds = Credentials.from_bytes(res.creds)
assert bytes(creds.node_id()) == signer.node_id(), "device certificate names the node"

refused(lambda: scheduler.register(signer, invite_code=os.environ["INVITE_2"]), "AlreadyExists")

rec = scheduler.recover(signer)
recovered = Credentials.from_bytes(rec.creds)
assert bytes(recovered.node_id()) == signer.node_id()

stranger = Signer(bytes([1] * 32), "regtest", nobody)
refused(lambda: scheduler.recover(stranger), "NotFound")

for c in (creds, recovered):
    authed = Scheduler("regtest", c)
    codes = authed.get_invite_codes()
    assert len(codes.invite_code_list) == 3, codes
    assert not any(i.is_redeemed for i in codes.invite_code_list)
    info = authed.schedule()
    assert info.grpc_uri.startswith("https://localhost:"), info

# Webhooks through gl-client's own calls: add (id and secret, shown once), list (no
# secrets), rotate, a target inside the operator's network refused, delete.
authed = Scheduler("regtest", creds)
hook = authed.add_outgoing_webhook("https://1.1.1.1/hook")
assert hook.id > 0 and hook.secret.startswith("whsec_"), hook
listed = authed.list_outgoing_webhooks().outgoing_webhooks
assert [(w.id, w.uri) for w in listed] == [(hook.id, "https://1.1.1.1/hook")], listed
rotated = authed.rotate_outgoing_webhook_secret(hook.id)
assert rotated.secret.startswith("whsec_") and rotated.secret != hook.secret
msg = refused(lambda: authed.add_outgoing_webhook("https://127.0.0.1/hook"), "InvalidArgument")
assert "--webhook-allow-private" in msg, msg
refused(lambda: authed.rotate_outgoing_webhook_secret(hook.id + 1000), "NotFound")
authed.delete_outgoing_webhooks([hook.id])
assert len(authed.list_outgoing_webhooks().outgoing_webhooks) == 0

# What the Rust side checks with the seed (bytes(32)): the runes gl-client put in the
# credentials it made, and one it mints read-only for a key of the test's choosing.
out = os.environ.get("GLCLIENT_OUT")
if out:
    with open(os.path.join(out, "registered.gfs"), "wb") as f:
        f.write(res.creds)
    with open(os.path.join(out, "recovered.gfs"), "wb") as f:
        f.write(rec.creds)
    read_only = signer.create_rune([["pubkey=" + os.environ["READ_ONLY_PUBKEY"]], ["method^get", "method^list"]])
    with open(os.path.join(out, "read_only.rune"), "w") as f:
        f.write(read_only)

print("gl-client", glclient.__version__ if hasattr(glclient, "__version__") else "", "interop ok")
