"""Rehearsal smoke scenario: the kit's HTTP client, configured as live, reaches the live host names over TLS.

Writes ``$REHEARSAL_DIR/result.json`` with what it saw; exits 0 when it could run every step (the test asserts).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import httpx
from lanelab import http
from lanelab.config import Settings

result: dict[str, object] = {}
settings = Settings.from_env()
result["settings"] = {"mode": settings.mode, "base_url": settings.base_url, "opt_in": settings.live_opt_in,
                      "ca_bundle": str(settings.ca_bundle)}
result["resolved"] = sorted({info[4][0] for info in socket.getaddrinfo("api.anthropic.com", 443,
                                                                          type=socket.SOCK_STREAM)})

with http.client(settings.base_url, settings=settings) as client:
    minted = client.post(f"{settings.base_url}/_sim/tokens", json={}).json()
    token = minted["access_token"]
    headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01",
               "anthropic-beta": "oauth-2025-04-20"}
    models = client.get(f"{settings.base_url}/v1/models", headers=headers)
    result["models"] = {"status": models.status_code, "url": str(models.url),
                        "ids": [m["id"] for m in models.json().get("data", [])],
                        "http_version": models.http_version}
    # a code that was never issued: the token endpoint must answer (with an OAuth error), not fail to connect
    token_resp = client.post("https://platform.claude.com/v1/oauth/token",
                             json={"grant_type": "authorization_code", "code": "never-issued",
                                   "code_verifier": "x" * 43, "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
                                   "redirect_uri": "https://platform.claude.com/oauth/code/callback"})
    result["token_endpoint"] = {"status": token_resp.status_code, "body": token_resp.json()}

# the same request without the test CA (the public store) must fail verification: the TLS is real
try:
    with httpx.Client(trust_env=False, timeout=5) as plain:
        plain.get("https://api.anthropic.com/v1/models")
    result["without_test_ca"] = "connected"
except httpx.HTTPError as exc:
    result["without_test_ca"] = f"{type(exc).__name__}: {exc}"

Path(os.environ["REHEARSAL_DIR"], "result.json").write_text(json.dumps(result, indent=1))
