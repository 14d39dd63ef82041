"""How fast is the simulator? Requests/second for a typical served /v1/messages request versus a bare route
(``GET /_sim/ping``) on the same server, same client and same concurrency, so the ratio shows what the simulator's
own work (faults, credential, features, policy, billing, unified headers, log) costs on top of the framework.

Run: ``.venv/bin/python bench/bench_sim.py [--seconds 4] [--concurrency 8]`` (about 10 s in total).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from lanelab.sim.server import running_simulator

MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}


async def measure(client: httpx.AsyncClient, method: str, url: str, seconds: float, concurrency: int,
                  **kwargs) -> tuple[float, int]:
    """Requests/second over ``seconds`` with ``concurrency`` workers; returns (rate, non-2xx count)."""
    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            r = await client.request(method, url, **kwargs)
            done += 1
            errors += r.status_code >= 300

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started), errors


async def main(seconds: float, concurrency: int) -> None:
    with running_simulator() as sim:
        token = sim.mint_token()["access_token"]
        headers = {"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
                   "anthropic-version": "2023-06-01"}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await measure(client, "GET", f"{sim.base_url}/_sim/ping", 0.5, concurrency)  # warm up
            ping, ping_err = await measure(client, "GET", f"{sim.base_url}/_sim/ping", seconds, concurrency)
            msgs, msg_err = await measure(client, "POST", f"{sim.base_url}/v1/messages", seconds, concurrency,
                                          json=MINIMAL, headers=headers)
        logged = len(sim.state.requests())
    print(f"concurrency {concurrency}, {seconds:g} s per endpoint, one httpx.AsyncClient, keep-alive")
    print(f"bare route  GET  /_sim/ping   : {ping:8.1f} req/s  (non-2xx: {ping_err})")
    print(f"typical     POST /v1/messages : {msgs:8.1f} req/s  (non-2xx: {msg_err}; {logged} requests logged)")
    print(f"ratio messages/ping           : {msgs / ping:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
