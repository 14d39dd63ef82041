"""How long does stopping a loopback server take? ``lanelab.serve.running_server`` with the kit's server class versus
the same runner with uvicorn's own ``uvicorn.Server`` put in its place (asked to stop by its ``should_exit`` flag,
as the runner did before). uvicorn's server looks at that flag every 0.1 s and sleeps 0.1 s more while shutting
down; the tests start and stop dozens of servers.

Each round starts a server, sends one request over a client that keeps its connection open (an idle keep-alive
connection at stop time, as in most tests), then times the ``with`` block's exit: the stop, the thread join and the
port closed. The two kinds alternate round by round, so a change in the machine's load weighs on both alike.

Run: ``.venv/bin/python bench/bench_serve.py [--rounds 20]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
import uvicorn
from lanelab import serve


class UvicornServer(uvicorn.Server):
    """uvicorn's own server, stopped the way the runner stopped it before (the flag only)."""

    def stop(self) -> None:
        self.should_exit = True


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


def stop_seconds(server_class: type) -> float:
    """One round: serve, answer one request, keep the connection idle, and time the exit."""
    kit_class = serve._Server
    serve._Server = server_class  # type: ignore[misc]
    try:
        with httpx.Client() as client:
            ctx = serve.running_server(hello)
            served = ctx.__enter__()
            assert client.get(served.base_url).text == "hello"
            started = time.perf_counter()
            ctx.__exit__(None, None, None)
            return time.perf_counter() - started
    finally:
        serve._Server = kit_class  # type: ignore[misc]


def main(rounds: int) -> None:
    kit_class = serve._Server
    for server_class in (kit_class, UvicornServer):  # warm up
        stop_seconds(server_class)
    times: dict[type, list[float]] = {kit_class: [], UvicornServer: []}
    for _ in range(rounds):
        for server_class, taken in times.items():
            taken.append(stop_seconds(server_class))
    kit, plain = (statistics.median(times[c]) for c in (kit_class, UvicornServer))
    print(f"{rounds} rounds each, alternating; one idle keep-alive connection at stop time")
    print(f"stop, kit's server (lanelab.serve) : median {kit * 1000:7.1f} ms  max {max(times[kit_class]) * 1000:7.1f} ms")
    print(f"stop, plain uvicorn.Server         : median {plain * 1000:7.1f} ms  "
          f"max {max(times[UvicornServer]) * 1000:7.1f} ms")
    print(f"ratio plain/kit (median)           : {plain / kit:7.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args().rounds)
