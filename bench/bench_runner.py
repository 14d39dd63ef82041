"""Runner overhead: the kit's runner against a bare httpx.AsyncClient loop, same requests, same simulator, same
concurrency, in one process. Prints both rates and their ratio (aim: at least 0.9).

    .venv/bin/python bench/bench_runner.py [--requests 400] [--concurrency 8] [--rounds 15]

The simulator runs in its own process (``python -m lanelab sim``), as the live API would be remote: in-process, its
request handling would share the client's interpreter lock and measure the simulator rather than the runner. The
bare loop only sends and reads; the runner also classifies each response, and redacts, leak-checks and writes one
record per cell before its slot is freed, which is the price of resumable, leak-checked runs. The runner's client
(``lanelab.http``) keeps no cookies, so unlike the bare loop's default httpx client it does not read each answer
for cookies to keep (about 40 µs a response here). Rounds alternate the runs so that warm-up and noise fall on all
sides.

The ratio is for the runner as it runs against the simulator, where a cell's line is written but fsync'd only at
the run's end. The runner as live mode runs it (``durable``: each line fsync'd before its slot is freed, lines that
wait sharing an fsync) is measured in the same rounds and printed below it, for what fsync costs on this disk.

The client is CPU-bound, so this process's CPU time per request (event loop and writer thread) is printed too: a
second view of the same cost that does not count time spent waiting for a core on a busy machine.

The ratios are paired: each round runs the bare loop and the runner back to back, and the ratio is the median of the
rounds' ratios. On a shared machine the pace drifts by half from one round to another (the same loop took 0.84 s and
1.40 s in one run here); a round's two runs meet the same pace, so the drift cancels in its ratio, where a ratio of
the two sides' medians keeps some of it. That ratio is printed too, for comparison. Next to each paired ratio is the
range its median would fall in 9 times in 10 for rounds like these (a bootstrap over the rounds): on a noisy machine
it shows how far one run's figure can be trusted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from lanelab.config import Settings
from lanelab.matrix.plan import MatrixPlan, PlannedCell
from lanelab.matrix.runner import RunOptions, run_matrix
from lanelab.matrix.sender import NO_RETRY
from lanelab.matrix.sim_client import sim_token
from lanelab.wire.spec import build_request
from pairing import paired, spread


@contextlib.contextmanager
def simulator_process(policy: str) -> Iterator[str]:
    """``python -m lanelab sim`` in a child process; yields its base URL (the first line it prints)."""
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "sim", "--policy", policy, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = (proc.stdout.readline() if proc.stdout else "").strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start (first line: {url!r})")
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url + "/_sim/policy", timeout=1.0)
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def workload(n: int, settings: Settings) -> list[PlannedCell]:
    """``n`` cells cycling through the hermes-0.14.0 one-factor-at-a-time variants, each with its own id."""
    base = MatrixPlan.build("hermes-0.14.0", "ofat", None, settings).planned()
    return [dataclasses.replace(base[i % len(base)], cell_id=f"{i:012x}") for i in range(n)]


async def bare(cells: list[PlannedCell], base_url: str, token: str, concurrency: int) -> tuple[float, float]:
    """Seconds taken and process CPU seconds used sending ``cells``, from after the client is made (making an
    ``httpx.AsyncClient`` loads the system's CA certificates, tens of milliseconds that the runner's client, made for
    plain-HTTP loopback, does not spend) until the last answer is read."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        async def one(cell: PlannedCell) -> None:
            async with sem:
                response = await client.send(build_request(cell.spec, base_url, token))
                await response.aread()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(c) for c in cells))
        return time.perf_counter() - started, time.process_time() - cpu


def kit(cells: list[PlannedCell], base_url: str, token: str, concurrency: int, out: Path, tag: str,
        durable: bool = False) -> tuple[float, float]:
    """Seconds taken and process CPU seconds used by a whole run of ``cells`` (its setup included: opening the run
    file, making the client), as a user's run takes them."""
    settings = Settings(mode="sim", base_url=base_url, out=out)
    started, cpu = time.perf_counter(), time.process_time()
    options = RunOptions(settings=settings, run_id=f"bench-{tag}", concurrency=concurrency, retry=NO_RETRY,
                         progress=False, durable=durable)
    result = run_matrix(cells, options, profile="hermes-0.14.0", design="bench", token=token, credential="bench")
    taken = time.perf_counter() - started, time.process_time() - cpu
    assert result.sent == len(cells), result.summary()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15,
                        help="rounds, each running the bare loop and the runner back to back; the ratios are the median "
                             "of the rounds' (default 15: this machine is noisy)")
    args = parser.parse_args()
    with simulator_process("2026-05-25") as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="sim", base_url=url, out=Path(tmp))
        cells = workload(args.requests, settings)
        token = sim_token(url)
        asyncio.run(bare(cells[:20], url, token, args.concurrency))  # warm-up
        times: dict[str, list[float]] = {"bare": [], "kit": [], "durable": []}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        for r in range(args.rounds):
            for name, taken in times.items():
                if name == "bare":
                    seconds, used = asyncio.run(bare(cells, url, token, args.concurrency))
                else:
                    seconds, used = kit(cells, url, token, args.concurrency, Path(tmp), f"{name}{r}",
                                        durable=name == "durable")
                taken.append(seconds)
                cpu[name].append(used)
    n = len(cells)
    rate = {name: n / statistics.median(t) for name, t in times.items()}
    us = {name: sum(c) / (n * args.rounds) * 1e6 for name, c in cpu.items()}

    print(f"{n} requests × {args.rounds} rounds, concurrency {args.concurrency}, simulator policy 2026-05-25")
    for name, label in (("bare", "bare httpx loop "), ("kit", "lanelab runner  "), ("durable", "runner, durable ")):
        print(f"{label}: {rate[name]:8.1f} requests/s  {us[name]:6.0f} µs CPU/request  "
              f"(median of {', '.join(f'{t:.2f}s' for t in times[name])})")
    ratio, each = paired(times["bare"], times["kit"])
    print(f"ratio runner/bare: {ratio:.2f} (aim ≥ 0.9; the median of the rounds' ratios: "
          f"{', '.join(f'{x:.2f}' for x in each)}; resampled, it falls within {spread(each)})")
    ratio, each = paired(cpu["bare"], cpu["kit"])
    print(f"ratio runner/bare: {ratio:.2f} (CPU per request, likewise: {', '.join(f'{x:.2f}' for x in each)}; "
          f"resampled, within {spread(each)})")
    print(f"ratio runner/bare: {rate['kit'] / rate['bare']:.2f} (the medians' ratio: the rounds' spread, which the "
          "machine's pace adds, weighs on it)")
    print(f"ratio durable/bare: {paired(times['bare'], times['durable'])[0]:.2f} (each record fsync'd, as in live mode)")


if __name__ == "__main__":
    main()
