"""``python -m lanelab diff A B``: a structural, annotated diff of two requests (profile names or files, or captures)."""

from __future__ import annotations

import argparse

NAME = "diff"
HELP = "show how two requests differ (headers, query, system blocks, tools, body), with what reports say"
DESCRIPTION = (
    "A and B are profile names (data/profiles), profile files (.toml), Hermes request_dump_*.json files or capture "
    "files from 'lanelab capture' (by default their last inference request; --index picks another, and the "
    "command says which one it took). Prints a Markdown table, one row per difference, with both values cut short "
    "and the public reports behind each (data/diff_annotations.toml) listed once below it, and whether either "
    "request carries a billing attestation block; --csv gives every value whole."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="first request: a profile name, a profile file, a capture file "
                        "or a Hermes request_dump_*.json")
    parser.add_argument("b", help="second request: a profile name, a profile file, a capture file "
                        "or a Hermes request_dump_*.json")
    parser.add_argument("--index", type=int, action="append", default=None, metavar="N",
                        help="which inference request of a capture (0 the first, -1 the last; default -1): once for "
                        "every capture, or twice (A's, then B's)")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of Markdown")


def run(args: argparse.Namespace) -> int:
    import sys

    from lanelab.matrix.from_capture import indexes_for, is_capture_ref, pick_request
    from lanelab.walkthrough.dumps import load_request_or_dump
    from lanelab.wire.diff import diff_specs

    ia, ib = indexes_for([args.a, args.b], args.index)
    # a billing attestation block shows as the kit's marker
    a_label, a, a_notes = load_request_or_dump(args.a, as_captured=True, index=ia)
    b_label, b, b_notes = load_request_or_dump(args.b, as_captured=True, index=ib)
    taken = []  # which request of a capture, and what a dump does not record (a dump always says something)
    for side, ref, i, notes in (("A", args.a, ia, a_notes), ("B", args.b, ib, b_notes)):
        taken += [f"{side} (a Hermes request dump): {note}" for note in notes] if notes else \
            [f"{side}: {pick_request(ref, i).describe(ref)}"] if is_capture_ref(ref) else []
    result = diff_specs(a, b, a_label, b_label)
    if args.csv:
        for line in taken:  # the table stays machine-readable on stdout
            print(line, file=sys.stderr)
        print(result.to_frame().to_csv(index=False), end="")
    else:
        for line in taken:
            print(line)
        print(f"{len(result)} difference(s) between {result.a_label} and {result.b_label}.")
        print(result.to_markdown())
    return 0
