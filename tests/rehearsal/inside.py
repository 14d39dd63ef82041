"""The rehearsal's runner inside the private network namespace (a test tool; started by ``conftest.rehearse``).

It starts the simulator serving TLS on 127.0.0.1:443 with the test certificate for the live host names (one server
answers them all, since they all resolve to 127.0.0.1), runs the scenario script with the environment it was given
(the kit configured exactly as live), then writes the simulator's request log (redacted, as the simulator keeps it)
to ``--log`` and exits with the scenario's status. Its own failures exit with :data:`RUNNER_FAILED`.

    python inside.py --cert C --key K --log L [--policy P] [--account JSON] [--timeout S] -- SCENARIO [ARG …]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNNER_FAILED = 126


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--policy")
    parser.add_argument("--account")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("scenario", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    scenario = args.scenario[1:] if args.scenario[:1] == ["--"] else args.scenario
    try:
        from lanelab.config import DEFAULT_POLICY
        from lanelab.serve import TLS
        from lanelab.sim.server import running_simulator
        from lanelab.walkthrough.namespace import API_HOST

        tls = TLS(Path(args.cert), Path(args.key), API_HOST)
        account = json.loads(args.account) if args.account else None
        with running_simulator(policy=args.policy or DEFAULT_POLICY, account=account, port=443, tls=tls) as sim:
            try:
                done = subprocess.run([sys.executable, *scenario], timeout=args.timeout, check=False)
                status = done.returncode
            except subprocess.TimeoutExpired:
                print(f"rehearsal runner: the scenario did not finish in {args.timeout:g} s", file=sys.stderr)
                status = RUNNER_FAILED
            Path(args.log).write_text(json.dumps(sim.state.requests(0), indent=1, default=str))
    except Exception as exc:  # noqa: BLE001 - one line for the harness, whatever broke
        print(f"rehearsal runner: {type(exc).__name__}: {exc}", file=sys.stderr)
        return RUNNER_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
