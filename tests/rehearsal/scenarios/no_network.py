"""Rehearsal scenario: inside the namespace, nothing but the mapped names on loopback is reachable.

Records in ``$REHEARSAL_DIR/result.json``: how a request to a name missing from the hosts file fails, how a name
that is Anthropic's but not mapped fails, and whether any route leaves loopback (a UDP ``connect`` only looks the
route up; it sends nothing).
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import httpx

result: dict[str, object] = {}
ca = os.environ["REHEARSAL_CA"]
for url in ("https://example.com/", "https://statsig.anthropic.com/", "https://www.anthropic.com/"):
    try:
        with httpx.Client(trust_env=False, verify=ca, timeout=5) as browser:
            response = browser.get(url)
        result[url] = f"answered {response.status_code}"
    except httpx.HTTPError as exc:
        result[url] = f"{type(exc).__name__}: {exc}"

routes = {}
for family, address in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, 53))
            routes[address] = "route found"
        except OSError as exc:
            routes[address] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
result["routes"] = routes
result["interfaces"] = [name for _, name in socket.if_nameindex()]
result["hosts_file"] = Path("/etc/hosts").read_text()
Path(os.environ["REHEARSAL_DIR"], "result.json").write_text(json.dumps(result, indent=1))
