"""``python -m lanelab capture``: a loopback recording proxy in front of the simulator (or, opted in, the real API)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from lanelab.config import Settings
from lanelab.errors import UserError

NAME = "capture"
HELP = "record what a client really sends: a loopback proxy that forwards byte for byte and logs redacted JSONL"
DESCRIPTION = (
    "Starts a reverse proxy on 127.0.0.1 and prints its base URL as the first line. Point a client at it "
    "(ANTHROPIC_BASE_URL for Claude Code and the anthropic SDK, the provider base URL for Hermes). Each exchange is "
    "forwarded unchanged to --upstream (default: LANELAB_BASE_URL) and recorded, redacted, as one JSON line with "
    "timing. The real API is used only with LANELAB_LIVE_OPT_IN=1. With --to-profile NAME CAPTURE, turns the last "
    "inference request of a capture file (--index picks another) into data/profiles/NAME.toml instead; an existing "
    "profile of that name (one the kit ships, or an earlier conversion) is never overwritten: the command refuses "
    "and writes nothing."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", default=None, help="where to forward (default: $LANELAB_BASE_URL)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--out", type=Path, default=None,
                        help="capture file (default: $LANELAB_OUT/captures/capture-<time>.jsonl)")
    parser.add_argument("--to-profile", metavar="NAME", default=None,
                        help="convert a capture file (positional CAPTURE) into a profile named NAME")
    parser.add_argument("capture", nargs="?", type=Path, help="with --to-profile: the capture file to convert")
    parser.add_argument("--index", type=int, default=None, metavar="N",
                        help="with --to-profile: which inference request (0 the first, -1 the last; default -1)")
    parser.add_argument("--prompt", default="ping", help="with --to-profile: the user prompt to put in")
    parser.add_argument("--profiles-dir", type=Path, default=None, help="with --to-profile: where to write")


def _to_profile(args: argparse.Namespace) -> int:
    from lanelab.matrix.from_capture import pick_request, profile_from_capture

    if args.capture is None:
        raise UserError("--to-profile needs the capture file to convert.",
                        "Example: python -m lanelab capture --to-profile my-client reports/captures/x.jsonl")
    picked = pick_request(args.capture, args.index)
    print(f"request: {picked.describe(args.capture)}")
    path = profile_from_capture(args.capture, args.to_profile, prompt=args.prompt, out_dir=args.profiles_dir,
                                index=picked.position)
    print(path)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.to_profile:
        return _to_profile(args)
    alone = [name for name, given in (("a capture file", args.capture is not None), ("--index", args.index is not None),
                                      ("--prompt", args.prompt != "ping"), ("--profiles-dir", args.profiles_dir))
             if given]
    if alone:  # they would be ignored: say so instead
        raise UserError(f"{', '.join(alone)} go{'es' if len(alone) == 1 else ''} with --to-profile NAME.",
                        "Add --to-profile NAME to turn a capture into a profile, or leave them out to record.")
    from lanelab.walkthrough.capture import running_capture

    settings = Settings.from_env()
    upstream = args.upstream or settings.base_url
    if not upstream:
        raise UserError("No upstream to forward to.",
                        "Start a simulator ('python -m lanelab sim') and pass --upstream with its URL, "
                        "or set LANELAB_BASE_URL.")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or settings.out / "captures" / f"capture-{stamp}.jsonl"
    with running_capture(upstream, out, port=args.port, settings=settings) as proxy:
        print(proxy.base_url, flush=True)
        print(f"forwarding to {proxy.upstream}; recording to {out}. Ctrl-C stops.", flush=True)
        from lanelab.serve import wait_for_stop

        wait_for_stop()
    print(f"{len(proxy.exchanges())} exchange(s) recorded in {out}", flush=True)
    raise KeyboardInterrupt  # stopped by Ctrl-C or SIGTERM, everything recorded: the CLI's one line, exit 130
