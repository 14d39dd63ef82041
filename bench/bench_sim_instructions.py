"""How much work is the simulator's own, counted in instructions: a figure that does not depend on the machine's pace.

bench_sim.py times whole exchanges (client, server and simulator in one process) and its ratio moves with the
machine's load by about ±0.05. Here the app is called directly (ASGI, no sockets, no client, one thread) under
valgrind's callgrind, which counts the instructions executed; the same code gives the same count to within about
0.5 %, whatever else the machine does, so a change of 1 % in the simulator's cost shows. Printed: instructions per
request for ``POST /v1/messages`` (the typical served request of bench_sim.py) and for its bare route
(``POST /_sim/ping?like=messages``: the same request and answer, none of the simulator's own work), and their
difference, the simulator's own work per request (credential, features, policy, billing, the rendered reply, the
request-log line).

Needs Debian's valgrind (``valgrind`` and ``callgrind_control`` on the PATH); without it, it says so and exits 0.
Run: ``.venv/bin/python bench/bench_sim_instructions.py [--requests 400]`` (about half a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}
ROUTES = {"typical     POST /v1/messages            ": "/v1/messages",
          "bare route  POST /_sim/ping?like=messages": "/_sim/ping?like=messages"}
WARM_UP = 200


def child(target: str, requests: int) -> None:
    """Under callgrind: warm the app up on both routes, then count ``requests`` calls of ``target`` alone."""
    from lanelab.sim.app import create_app

    app = create_app()
    token = app.simulator.mint_token()["access_token"]
    body = json.dumps(MINIMAL).encode()
    headers = [(b"host", b"127.0.0.1:1"), (b"authorization", f"Bearer {token}".encode()),
               (b"anthropic-beta", b"oauth-2025-04-20"), (b"anthropic-version", b"2023-06-01"),
               (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"), (b"connection", b"keep-alive"),
               (b"user-agent", b"python-httpx/0.28.1")]

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"{target} answered {message['status']}, not a served message")

    async def call(path: str, n: int) -> None:
        route, _, query = path.partition("?")
        for _ in range(n):
            await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                       "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query.encode(),
                       "root_path": "", "headers": headers, "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 1)},
                      receive, send)

    asyncio.run(call("/v1/messages", WARM_UP))  # (the bare route repeats the last answer /v1/messages served)
    asyncio.run(call("/_sim/ping?like=messages", WARM_UP))
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    asyncio.run(call(target, requests))
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def count(target: str, requests: int) -> int:
    """Instructions per request of ``target``, from a child process run under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                               sys.executable, __file__, "--child", target, "--requests", str(requests)],
                              capture_output=True, text=True, check=False)
        found = re.search(r"^totals: (\d+)", out.read_text() if out.exists() else "", re.MULTILINE)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run of {target} failed: {done.stderr.strip()[-500:]}")
        return int(found.group(1)) // requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests counted per route (default 400)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("skipped: valgrind is not installed (Debian: apt-get install valgrind)")
        return
    counts = {label: count(path, args.requests) for label, path in ROUTES.items()}
    typical, bare = counts.values()
    print(f"instructions per request, callgrind, the app called directly (no sockets, no client), "
          f"{args.requests} requests each:")
    for label, n in counts.items():
        print(f"  {label} : {n:>10,}")
    print(f"  the simulator's own work                  : {typical - bare:>10,}  ({(typical - bare) / bare:.2f} × the "
          "bare route's)")


if __name__ == "__main__":
    main()
