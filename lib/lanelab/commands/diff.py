"""``python -m lanelab diff A B``: a structural, annotated diff of two requests (profile names or capture files)."""

from __future__ import annotations

import argparse

NAME = "diff"
HELP = "show how two requests differ (headers, query, system blocks, tools, body), with what reports say"
DESCRIPTION = (
    "A and B are profile names (data/profiles) or capture files from 'lanelab capture' (their last inference "
    "request). Prints a Markdown table, one row per difference, annotated from data/diff_annotations.toml with the "
    "public reports behind each, and whether either request carries a billing attestation block."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="first request: a profile name or a capture file")
    parser.add_argument("b", help="second request: a profile name or a capture file")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of Markdown")


def run(args: argparse.Namespace) -> int:
    from lanelab.walkthrough.to_profile import load_request
    from lanelab.wire.diff import diff_specs

    a_label, a = load_request(args.a, as_captured=True)  # a billing attestation block shows as the kit's marker
    b_label, b = load_request(args.b, as_captured=True)
    result = diff_specs(a, b, a_label, b_label)
    if args.csv:
        print(result.to_frame().to_csv(index=False), end="")
    else:
        print(f"{len(result)} difference(s) between {result.a_label} and {result.b_label}.")
        print(result.to_markdown())
    return 0
