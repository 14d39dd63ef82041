"""Fault injection: make the simulator misbehave on purpose, so the kit's retries and classifiers get exercised.

Spec grammar (docs/contracts.md §1.2): ``;``-separated items ``kind[=arg][@pathglob][%probability][#first_n]``,
e.g. ``latency=200ms@/v1/messages;http429=1@/v1/messages%0.3;sse_cut#2``. A single request can ask for one with
the header ``x-lanelab-fault: kind[=arg]``.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass

from lanelab.errors import InputError

KINDS = ("latency", "reset", "http500", "http529", "http429", "malformed_json", "sse_cut")
#: Faults that replace the response outright (the others delay it or damage it in flight).
TERMINAL = ("reset", "http500", "http529", "http429")
GRAMMAR = "kind[=arg][@pathglob][%probability][#first_n], items separated by ';' (kinds: " + ", ".join(KINDS) + ")"
HEADER = "x-lanelab-fault"
#: The outcome (lanelab.sim.outcomes) whose rendered error each failing fault returns.
FAULT_OUTCOMES = {"http500": "server_error", "http529": "overloaded", "http429": "rate_limited"}

__all__ = ["FAULT_OUTCOMES", "GRAMMAR", "HEADER", "KINDS", "TERMINAL", "Fault", "FaultPlan", "FaultSpecError",
           "parse_item", "parse_spec"]

_ITEM = re.compile(
    r"^(?P<kind>[a-z0-9_]+)(?:=(?P<arg>[^@%#]*))?(?:@(?P<glob>[^%#]+))?(?:%(?P<prob>[^#]+))?(?:#(?P<n>.+))?$"
)


class FaultSpecError(InputError):
    """A fault spec string could not be parsed."""

    hint = f"Expected {GRAMMAR}. Example: latency=200ms@/v1/messages;http429=1%0.3;sse_cut#2"


@dataclass(frozen=True)
class Fault:
    """One fault: what to do, to which paths, how often, and for how many matching requests."""

    kind: str
    arg: str | None = None
    path_glob: str | None = None
    probability: float = 1.0
    first_n: int | None = None

    @property
    def latency_s(self) -> float:
        """The delay of a ``latency`` fault: ``200ms``, ``1.5s`` or a bare number of milliseconds."""
        return _duration(self.arg or "100ms")

    @property
    def retry_after(self) -> int:
        return int(float(self.arg)) if self.arg else 1

    @property
    def cut_after(self) -> int:
        """How many ``content_block_delta`` events an ``sse_cut`` lets through (default none: a one-delta reply,
        what a ``max_tokens`` 1 request gets, would otherwise arrive whole)."""
        return int(self.arg) if self.arg else 0

    @property
    def mid_stream(self) -> bool:
        """``http500=stream`` / ``http529=stream``: deliver the error as an SSE ``error`` event after a 200."""
        return self.arg == "stream"

    def matches(self, path: str) -> bool:
        if self.path_glob is None:
            return not path.startswith("/_sim/")
        return fnmatch.fnmatchcase(path, self.path_glob)

    def describe(self) -> str:
        out = self.kind + (f"={self.arg}" if self.arg else "") + (f"@{self.path_glob}" if self.path_glob else "")
        out += f"%{self.probability:g}" if self.probability != 1.0 else ""
        return out + (f"#{self.first_n}" if self.first_n is not None else "")


def _duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", text)
    if not m:
        raise ValueError(text)
    value = float(m.group(1))
    return value if m.group(2) == "s" else value / 1000


def _check_arg(kind: str, arg: str | None) -> None:
    if arg in (None, ""):
        return
    if kind == "latency":
        _duration(arg)
    elif kind in ("http429", "sse_cut"):
        if not arg.isdigit():
            raise ValueError(arg)
    elif kind in ("http500", "http529"):
        if arg != "stream":
            raise ValueError(arg)
    else:
        raise ValueError(arg)


def parse_item(item: str) -> Fault:
    """One ``kind[=arg][@pathglob][%probability][#first_n]`` item; :class:`FaultSpecError` names what is wrong."""
    text = item.strip()
    m = _ITEM.match(text)
    if not m:
        raise FaultSpecError(f"Cannot parse fault item {text!r}.")
    kind, arg = m.group("kind"), m.group("arg")
    if kind not in KINDS:
        raise FaultSpecError(f"Unknown fault kind {kind!r} in {text!r}.")
    try:
        _check_arg(kind, arg)
    except ValueError:
        raise FaultSpecError(f"Bad argument {arg!r} for fault {kind!r} in {text!r}.") from None
    probability = 1.0
    if m.group("prob") is not None:
        try:
            probability = float(m.group("prob"))
        except ValueError:
            probability = -1.0
        if not 0.0 < probability <= 1.0:
            raise FaultSpecError(f"Probability {m.group('prob')!r} in {text!r} must be a number in (0, 1].")
    first_n = None
    if m.group("n") is not None:
        if not m.group("n").isdigit() or int(m.group("n")) < 1:
            raise FaultSpecError(f"Count {m.group('n')!r} in {text!r} must be a whole number of at least 1.")
        first_n = int(m.group("n"))
    glob = m.group("glob")
    if glob is not None and not glob.startswith("/"):
        raise FaultSpecError(f"Path pattern {glob!r} in {text!r} must start with '/'.")
    return Fault(kind, arg or None, glob, probability, first_n)


def parse_spec(spec: str | None) -> list[Fault]:
    """All items of a spec string (empty or None: no faults)."""
    if not spec or not spec.strip():
        return []
    return [parse_item(item) for item in spec.split(";") if item.strip()]


class FaultPlan:
    """The active faults, with per-item counters for ``#first_n`` and a seeded coin for ``%probability``."""

    def __init__(self, spec: str | None = None, seed: int = 0):
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self.set(spec)
        self._initial = spec

    def reset(self) -> None:
        """Back to the plan it was created with: its spec, no fault fired yet, the coin re-seeded."""
        self.set(self._initial)
        with self._lock:
            self._rng.seed(self._seed)

    def set(self, spec: str | None) -> None:
        faults = parse_spec(spec)  # raises before anything changes
        with self._lock:
            self.faults = faults
            self.spec = ";".join(f.describe() for f in faults)
            self.fired = [0] * len(faults)

    def to_dict(self) -> dict[str, object]:
        with self._lock:
            return {"spec": self.spec, "faults": [
                {"kind": f.kind, "arg": f.arg, "path_glob": f.path_glob, "probability": f.probability,
                 "first_n": f.first_n, "fired": n} for f, n in zip(self.faults, self.fired)]}

    def select(self, path: str, header: str | None = None) -> list[Fault]:
        """The faults that fire for one request (the header's, if any, on top of the plan's)."""
        chosen: list[Fault] = []
        with self._lock:
            for i, fault in enumerate(self.faults):
                if not fault.matches(path):
                    continue
                if fault.first_n is not None and self.fired[i] >= fault.first_n:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                self.fired[i] += 1
                chosen.append(fault)
        if header:
            chosen.extend(parse_spec(header))
        return chosen
