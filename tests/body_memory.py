"""How much memory does a large request body cost the capture proxy? (issue 12, item 14)

Runs ``python -m lanelab capture`` as its own process in front of a loopback upstream that reads and discards what it
is sent, sends one warm-up request, then one request with a large JSON body, and reads the proxy process's peak
resident set size (``VmHWM`` in ``/proc/PID/status``) before and after: the difference is what the large body cost,
forwarding and recording included (the figure is read once the exchange's record is on disk).

Used by ``tests/test_limits.py`` (the figure goes to ``make audit``) and runnable on its own against any copy of the
kit, e.g. the code before a change::

    PYTHONPATH=/path/to/other/lib .venv/bin/python tests/body_memory.py [--mb 200] [--max-body BYTES]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from loopback_upstream import LoopbackUpstream

MB = 1024 * 1024


class DiscardUpstream(LoopbackUpstream):
    """A loopback upstream that reads each request body in pieces, counts it and throws it away."""

    def __init__(self) -> None:
        self.received: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                left = int(self.headers.get("content-length") or 0)
                total = 0
                while left:
                    piece = self.rfile.read(min(left, MB))
                    if not piece:
                        break
                    total += len(piece)
                    left -= len(piece)
                outer.received.append(total)
                payload = json.dumps({"type": "message", "id": "msg_1", "content": [], "received": total}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def json_body(size: int) -> tuple[int, Iterator[bytes]]:
    """A Messages request of ``size`` bytes whose user message is one long string, produced in 1 MiB pieces."""
    head = b'{"model": "claude-sonnet-4-6", "max_tokens": 1, "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    filler = size - len(head) - len(tail)

    def pieces() -> Iterator[bytes]:
        yield head
        left = filler
        chunk = b"x" * MB
        while left > 0:
            yield chunk[:left]
            left -= MB
        yield tail

    return size, pieces()


def _records(path: Path) -> int:
    try:
        return sum(1 for line in path.read_bytes().splitlines() if b'"record": "exchange"' in line[:40])
    except OSError:
        return 0


def measure(body_bytes: int = 200 * MB, max_body: int | None = None, lib: str | None = None,
            wait_s: float = 120.0) -> dict[str, Any]:
    """Send one ``body_bytes`` JSON body through a fresh capture proxy process; what it cost and what happened.

    Returns ``status`` (the proxy's answer), ``peak_rss_delta`` (bytes), ``capture_bytes`` (size of the capture file),
    ``upstream_received`` (body bytes the upstream got, 0 when refused) and ``recorded`` (exchange records on disk).
    ``max_body`` sets ``LANELAB_MAX_BODY_BYTES`` for the proxy; ``lib`` its ``PYTHONPATH`` (default: this one's).
    """
    with tempfile.TemporaryDirectory() as tmp, DiscardUpstream() as upstream:
        out = Path(tmp) / "cap.jsonl"
        env = {**os.environ, "LANELAB_OUT": tmp}
        if lib:
            env["PYTHONPATH"] = lib
        if max_body is not None:
            env["LANELAB_MAX_BODY_BYTES"] = str(max_body)
        proc = subprocess.Popen([sys.executable, "-m", "lanelab", "capture", "--upstream", upstream.base_url,
                                 "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            base = proc.stdout.readline().strip()
            if not base.startswith("http://"):
                raise RuntimeError(f"the proxy did not start: {proc.stderr.read() if proc.stderr else ''}")
            with httpx.Client(timeout=httpx.Timeout(600.0)) as client:
                client.post(base + "/v1/messages", json={"model": "m", "max_tokens": 1, "messages": []})
                deadline = time.monotonic() + 30
                while _records(out) < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                before = _peak_rss(proc.pid)
                size, pieces = json_body(body_bytes)
                try:
                    status = client.post(base + "/v1/messages", content=pieces,
                                         headers={"content-type": "application/json",
                                                  "content-length": str(size)}).status_code
                except httpx.HTTPError as exc:
                    status = f"{type(exc).__name__}"
            deadline = time.monotonic() + wait_s
            while _records(out) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            after = _peak_rss(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        return {"status": status, "peak_rss_delta": after - before, "capture_bytes": out.stat().st_size,
                "upstream_received": sum(upstream.received[1:]), "recorded": _records(out) - 1,
                "body_bytes": body_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="body size in MiB (default 200)")
    parser.add_argument("--max-body", type=int, default=None, help="LANELAB_MAX_BODY_BYTES for the proxy")
    args = parser.parse_args(argv)
    result = measure(args.mb * MB, args.max_body)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
