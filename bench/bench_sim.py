"""How fast is the simulator? Requests/second for a typical served /v1/messages request versus a bare route on the
same server, same client and same concurrency: ``POST /_sim/ping?like=messages`` with the very same headers and JSON
body, which the server reads and drops, and which answers with the very status, headers and body of the last answer
/v1/messages served. The exchange is thus the same size both ways, and both pass through the same server, middleware
(request id, faults) and client; the ratio (aim: at least 0.9) shows what the simulator's own work costs:
credential, features, policy, billing, unified headers, the rendered reply, and the request-log line, which only
/v1/messages gets (``/_sim`` routes are never logged).

Printed for scale: ``POST /_sim/ping`` answering ``{"ok": true}`` (so the ratio to it also charges the larger answer,
its unified headers and message, to the simulator), and ``GET /_sim/ping``, the cheapest request there is.

The endpoints are measured in alternating slices (``--rounds``), so a change in the machine's load during the run
weighs on all alike; the rates are totals over all slices. The ratio to the bare route is paired, as in
bench_runner.py: the median of the slices' ratios (the bare route's slice runs just before the /v1/messages one), with
the range that median falls in 9 times in 10 (:mod:`pairing`); the ratio of the totals is printed too. Client and server share one process, so the process CPU
time per request (both threads) is printed too: a second view of the same cost that does not count time spent
waiting for a core on a busy machine.

Run: ``.venv/bin/python bench/bench_sim.py [--seconds 6] [--concurrency 8] [--rounds 12]`` (about 30 s in total).
bench_sim_instructions.py counts the same two requests in instructions instead, which the machine's load does not
move.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from lanelab.sim.server import running_simulator
from pairing import paired, spread

MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}


async def measure(client: httpx.AsyncClient, method: str, url: str, seconds: float, concurrency: int,
                  **kwargs) -> tuple[int, float, float, int]:
    """``concurrency`` workers for ``seconds``; returns (requests done, seconds taken, process CPU seconds used,
    non-2xx count)."""
    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            r = await client.request(method, url, **kwargs)
            done += 1
            errors += r.status_code >= 300

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started, time.process_time() - cpu, errors


async def main(seconds: float, concurrency: int, rounds: int) -> None:
    with running_simulator() as sim:
        token = sim.mint_token()["access_token"]
        headers = {"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
                   "anthropic-version": "2023-06-01"}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        request = {"json": MINIMAL, "headers": headers}
        endpoints = {"get": ("GET", f"{sim.base_url}/_sim/ping", {}),
                     "small": ("POST", f"{sim.base_url}/_sim/ping", request),
                     "bare": ("POST", f"{sim.base_url}/_sim/ping?like=messages", request),
                     "messages": ("POST", f"{sim.base_url}/v1/messages", request)}
        totals = {name: [0, 0.0, 0.0, 0] for name in endpoints}
        #: per slice: seconds and CPU seconds per request, for the paired ratios
        slices: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in endpoints}
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            served = await client.post(f"{sim.base_url}/v1/messages", **request)  # the answer the bare route repeats
            if served.status_code != 200:
                raise SystemExit(f"/v1/messages answered {served.status_code}, not a served message: {served.text}")
            for method, url, kwargs in endpoints.values():  # warm up
                await measure(client, method, url, 0.5, concurrency, **kwargs)
            for _ in range(rounds):
                for name, (method, url, kwargs) in endpoints.items():
                    got = await measure(client, method, url, seconds / rounds, concurrency, **kwargs)
                    totals[name] = [a + b for a, b in zip(totals[name], got)]
                    slices[name][0].append(got[1] / max(1, got[0]))
                    slices[name][1].append(got[2] / max(1, got[0]))
        logged = len(sim.state.requests())
    rate = {name: n / secs for name, (n, secs, _, _) in totals.items()}
    cpu_us = {name: cpu / n * 1e6 for name, (n, _, cpu, _) in totals.items()}
    errors = {name: e for name, (_, _, _, e) in totals.items()}
    print(f"concurrency {concurrency}, {seconds:g} s per endpoint in {rounds} alternating slices, "
          "one httpx.AsyncClient, keep-alive")
    print(f"cheapest      GET  /_sim/ping               : {rate['get']:8.1f} req/s  {cpu_us['get']:7.0f} µs CPU/req  "
          f"(non-2xx: {errors['get']})")
    print(f"small answer  POST /_sim/ping               : {rate['small']:8.1f} req/s  {cpu_us['small']:7.0f} µs CPU/req  "
          f"(non-2xx: {errors['small']}; same request as below, answer {{\"ok\": true}})")
    print(f"bare route    POST /_sim/ping?like=messages : {rate['bare']:8.1f} req/s  {cpu_us['bare']:7.0f} µs CPU/req  "
          f"(non-2xx: {errors['bare']}; same request and same answer as below)")
    print(f"typical       POST /v1/messages             : {rate['messages']:8.1f} req/s  {cpu_us['messages']:7.0f} µs CPU/req  "
          f"(non-2xx: {errors['messages']}; {logged} requests logged)")
    ratio, each = paired(slices["bare"][0], slices["messages"][0])
    print(f"ratio messages / bare route                   : {ratio:8.2f}  (throughput; aim ≥ 0.9; the median of the "
          f"slices' ratios, resampled: within {spread(each)})")
    ratio, each = paired(slices["bare"][1], slices["messages"][1])
    print(f"ratio messages / bare route                   : {ratio:8.2f}  (CPU per request, likewise: within "
          f"{spread(each)})")
    print(f"ratio messages / bare route                   : {rate['messages'] / rate['bare']:8.2f}  (throughput, totals "
          "over all slices)")
    print(f"ratio messages / small answer                 : {rate['messages'] / rate['small']:8.2f}  (throughput; the larger answer "
          "charged to the simulator too)")
    print(f"ratio messages / cheapest GET                 : {rate['messages'] / rate['get']:8.2f}  (throughput, for scale)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per endpoint, all slices (default 6)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=12, help="alternating slices per endpoint (default 12)")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, max(1, args.rounds)))
