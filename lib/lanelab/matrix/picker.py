"""Notebook 02's pickers as a plain object: choose a profile (or a capture), a design, factors and a budget, see the
cell count and the cost update, and send.

:class:`MatrixPicker` holds every choice, rebuilds the :class:`lanelab.matrix.plan.MatrixPlan` after each one and
keeps what a person needs to read: the cell count and cost (inference requests, worst-case tokens), a validation
message instead of an exception for a choice that cannot be sent (no factor, a file that is not a capture, a full
factorial too large to send, a plan over its budget, a live credential that is missing), and, in live mode, the
:class:`lanelab.live.LiveGate` the user must confirm before :meth:`MatrixPicker.send` sends anything. After a send it
holds the run's result, its progress and the first-look findings (:func:`lanelab.findings.report.collect`).

It starts from the notebook's parameters, so a headless run that never touches it builds the same plan as the
parameters cell. :class:`lanelab.matrix.widget.MatrixWidget` is the thin ipywidgets layer over it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanelab.auth.issuer import default_label
from lanelab.config import Settings
from lanelab.errors import InputError, NotFound, UserError
from lanelab.live import LiveGate, NotConfirmed
from lanelab.matrix import factors as factors_mod
from lanelab.matrix import profiles as profiles_mod
from lanelab.matrix.budget import Cost
from lanelab.matrix.designs import DesignSummary
from lanelab.matrix.live_default import load_live_default
from lanelab.matrix.plan import MatrixPlan
from lanelab.matrix.profiles import Profile

if TYPE_CHECKING:
    from lanelab.findings.report import Findings
    from lanelab.matrix.runner import RunResult

__all__ = ["DESIGN_CHOICES", "MAX_CELLS", "MatrixPicker", "capture_files", "profile_for"]

#: The designs a person picks from, as (label, value).
DESIGN_CHOICES: tuple[tuple[str, str], ...] = (("one factor at a time", "ofat"),
                                               ("every combination (full)", "full"),
                                               ("pairwise", "pairwise"))
#: A full factorial larger than this is refused with a message (the pairwise design covers it in far fewer cells).
MAX_CELLS = 1000
#: Choices :meth:`MatrixPicker.choose` accepts.
CHOICES = ("profile", "design", "factors", "budget")


def capture_files(settings: Settings) -> list[Path]:
    """The capture files under ``LANELAB_OUT/captures`` (what ``capture`` and ``watch`` write), newest first."""
    folder = settings.out / "captures"
    files = [p for p in folder.glob("*.jsonl") if p.is_file()] if folder.is_dir() else []
    return sorted(files, key=lambda p: (-p.stat().st_mtime, p.name))


def profile_for(ref: str) -> Profile:
    """The profile a picker's choice names: a profile under data/profiles, or a file (a capture's last inference
    request, or a profile file), as :func:`lanelab.matrix.from_capture.profile_for` reads it (with its caveats).

    A file's profile is named after the file plus a short digest of its request, so two different captures never
    share a run (cell ids and run ids derive from the profile's name).

    Returns:
        The :class:`Profile` (sendable: a first-party reference is refused).

    Raises:
        NotFound: neither a profile name nor a file.
        ReferenceOnlyProfile: a first-party reference (or its capture): never sent.
        UserError: a file that holds no request the kit can read.
    """
    ref = str(ref).strip()
    if not ref:
        raise InputError("No profile chosen.", "Pick a profile or a capture, or give the path of a capture file.")
    if ref in profiles_mod.list_profiles():
        return profiles_mod.ensure_sendable(ref)
    path = Path(ref).expanduser()
    if not path.is_file():
        raise NotFound(f"No profile named {ref!r} and no file at that path.",
                       f"Known profiles: {', '.join(profiles_mod.list_profiles())}; or a capture file (.jsonl).")
    if path.suffix not in (".jsonl", ".toml"):
        raise InputError(f"{path.name} is neither a capture (.jsonl) nor a profile file (.toml).",
                         "Capture a client with python -m lanelab capture (or watch), then choose the file it wrote.")
    from lanelab.matrix.from_capture import profile_for as read_profile

    try:
        profile = read_profile(path)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise InputError(f"{path.name} is neither a capture nor a profile file the kit can read.",
                         "Choose a .jsonl capture (python -m lanelab capture or watch) or a profile .toml.") from None
    if path.suffix == ".toml" and path.resolve().parent == profiles_mod.profiles_dir().resolve():
        return profile  # a shipped profile's own file: that profile, under its own name
    digest = hashlib.sha256(json.dumps(profile.spec.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:6]
    name = f"{re.sub(r'[^A-Za-z0-9._-]+', '-', profile.name).strip('-') or 'capture'}-{digest}"
    return dataclasses.replace(profile, name=name)


def _budget(value: Any) -> int | None:
    """A budget choice as a whole number of inference requests (None: no cap). Raises :class:`InputError`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise InputError(f"The budget {value!r} is not a whole number of inference requests.",
                         "Give a number such as 10, or leave it empty for no cap (sim mode only).")
    return int(text)


class MatrixPicker:
    """Notebook 02's choices and what follows from them; every widget action is a method here.

    Build it from the parameters (``profile``, ``design``, ``factors``, ``levels``, ``budget``, ``credential``,
    ``confirmed`` = ``CONFIRM_LIVE``; ``run_options`` such as ``run_id``, ``concurrency`` and ``usage_snapshots``
    go to :meth:`MatrixPlan.run`). ``design`` and ``factors`` None mean the parameters cell's defaults (sim: one
    factor at a time over every factor but credential; live: the live default plan). ``confirmed`` confirms only the
    plan of the parameters: any change asks again.

    Read :attr:`plan`, :attr:`summary` (count and cost), :attr:`message` (why the choice cannot be sent; empty when it
    can), :attr:`gate` and :attr:`ready`; after :meth:`send`: :attr:`result`, :attr:`progress`, :attr:`findings` and
    :attr:`status`. Nothing here raises for a bad choice.
    """

    def __init__(self, profile: str = "hermes-0.14.0", design: str | None = None,
                 factors: Iterable[str] | None = None, settings: Settings | None = None, *,
                 levels: Mapping[str, Iterable[str]] | None = None, budget: int | str | None = None,
                 credential: str | None = None, confirmed: bool = False, **run_options: Any):
        self.settings = settings or Settings.from_env()
        self.live = self.settings.mode == "live"
        self.catalog = factors_mod.load_factors()
        self.profile = str(profile)
        self.design = design
        self.factors: list[str] | None = None if factors is None else list(factors)
        self.levels = {str(k): [str(x) for x in v] for k, v in (levels or {}).items()}
        self.budget: int | str | None = budget
        self.credential = credential or default_label(self.settings.mode)
        self.run_options = dict(run_options)
        self._confirmed = bool(confirmed)
        self._extra_refs: list[str] = []
        self._sendable: list[str] | None = None
        self.plan: MatrixPlan | None = None
        self.summary: DesignSummary | None = None
        self.gate: LiveGate | None = None
        self.message = ""
        self.status = ""
        self.result: RunResult | None = None
        self.findings: Findings | None = None
        self.progress: tuple[int, int] = (0, 0)
        #: called with (done, total) while :meth:`send` sends (from the sending thread); the widget's progress bar
        self.on_progress: Callable[[int, int], None] | None = None
        self._update()

    # -- what can be chosen -------------------------------------------------------------------------------------------
    def _sendable_profiles(self) -> list[str]:
        if self._sendable is None:  # read once: the profiles do not change while a notebook runs
            self._sendable = []
            for name in profiles_mod.list_profiles():
                try:
                    if not profiles_mod.load_profile(name).reference_only:
                        self._sendable.append(name)
                except UserError:
                    continue
        return self._sendable

    def _listed(self) -> list[tuple[str, str]]:
        return ([(name, name) for name in self._sendable_profiles()]
                + [(f"capture: {path.name}", str(path)) for path in capture_files(self.settings)])

    @property
    def profile_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs: the sendable profiles, the captures under LANELAB_OUT/captures, then any other file
        chosen (a first-party reference is left out: the kit never sends it)."""
        out = self._listed()
        known = {v for _, v in out}
        for ref in dict.fromkeys([*self._extra_refs, self.profile]):
            if ref and ref not in known:
                out.append((f"file: {Path(ref).name}" if Path(ref).name != ref else ref, ref))
        return out

    @property
    def design_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the designs."""
        return list(DESIGN_CHOICES)

    @property
    def factor_choices(self) -> list[str]:
        """Every factor of data/factors.toml but ``credential`` (which varies saved credentials, not the request)."""
        return [f for f in self.catalog if f != "credential"]

    def factor_description(self, name: str) -> str:
        """What a factor varies, from data/factors.toml."""
        return self.catalog[name].description if name in self.catalog else ""

    @property
    def chosen_design(self) -> str:
        """The design in effect (the default resolved)."""
        if self.plan is not None:
            return self.plan.design
        return self.design or (load_live_default().design if self.live and self.factors is None else "ofat")

    @property
    def chosen_factors(self) -> list[str]:
        """The factors in effect (the default resolved)."""
        if self.factors is not None:
            return list(self.factors)
        if self.plan is not None:
            return list(self.plan.factors)
        return load_live_default().factors if self.live else self.factor_choices

    # -- choosing -----------------------------------------------------------------------------------------------------
    def choose(self, **choices: Any) -> MatrixPicker:
        """Change any of ``profile``, ``design``, ``factors`` (a list), ``budget`` (a number, or None/"" for no cap)
        and rebuild the plan, its cost and its message. A live confirmation given earlier no longer holds.

        Returns the picker. Raises ``TypeError`` for a name that is not a choice (a programming error, not a choice).
        """
        unknown = [k for k in choices if k not in CHOICES]
        if unknown:
            raise TypeError(f"not a choice: {', '.join(unknown)} (choose among {', '.join(CHOICES)})")
        if "profile" in choices:
            self.profile = str(choices["profile"] or "").strip()
        if "design" in choices:
            self.design = choices["design"] or None
        if "factors" in choices:
            self.factors = None if choices["factors"] is None else [str(f) for f in choices["factors"]]
        if "budget" in choices:
            self.budget = choices["budget"]
        self._confirmed = False
        if self.status.startswith("Not sent"):  # it was about the earlier choice
            self.status = ""
        self._update()
        return self

    def _levels_for(self, names: list[str] | None) -> dict[str, list[str]] | None:
        if names is None:
            return self.levels or None
        return {f: v for f, v in self.levels.items() if f in names} or None

    def _full_size(self, names: list[str]) -> int:
        return math.prod(len(self.levels.get(f) or self.catalog[f].levels) for f in names if f in self.catalog)

    def _update(self) -> None:
        """Rebuild plan, cost, message and gate from the choices; a bad choice becomes :attr:`message`."""
        self.plan = self.summary = self.gate = None
        self.message = ""
        try:
            budget = _budget(self.budget)
            profile = profile_for(self.profile)
            if profile.name != self.profile and self.profile not in self._extra_refs:
                self._extra_refs.append(self.profile)  # a file that reads: keep offering it
            design = self.design
            if design is not None and design not in {v for _, v in DESIGN_CHOICES}:
                raise InputError(f"No design named {design!r}.", "Choose one factor at a time, full or pairwise.")
            if self.factors is not None and not self.factors:
                raise InputError("No factor chosen.", "Tick at least one factor to vary.")
            if design == "full":
                size = self._full_size(self.chosen_factors)
                if size > MAX_CELLS:
                    raise InputError(f"Every combination of these factors is {size:,} cells, more than "
                                     f"{MAX_CELLS:,}.", "Choose fewer factors, or the pairwise design (every pair of "
                                     "levels at least once, in far fewer cells).")
            plan = MatrixPlan.build(profile, design, self.factors, self.settings,
                                    levels=self._levels_for(self.factors))
            self.plan, self.summary = plan, plan.describe()
            if self.live and budget is None:
                raise InputError("Live mode needs a budget.", "Give the most inference requests to spend, e.g. 10.")
            if not self.live and budget is not None:
                plan.check_budget(budget)  # live: the gate checks it (building every request once more)
            self.gate = plan.gate(self.credential, budget, confirmed=self._confirmed)
        except UserError as exc:
            self.message = str(exc)

    # -- reading ------------------------------------------------------------------------------------------------------
    @property
    def cells(self) -> int:
        """How many cells the chosen plan has (0 when there is none)."""
        return self.summary.cells if self.summary is not None else 0

    @property
    def cost(self) -> Cost | None:
        """What sending the plan costs: inference requests and worst-case tokens (None without a plan)."""
        return self.summary.cost if self.summary is not None else None

    @property
    def ready(self) -> bool:
        """Whether the choice can be sent (a plan within budget, a gate; in live mode it may still await
        confirmation)."""
        return self.plan is not None and self.gate is not None and not self.message

    @property
    def confirmed(self) -> bool:
        """Whether nothing stands between the plan and sending it (sim mode, or a confirmed live gate)."""
        return self.ready and self.gate is not None and self.gate.confirmed

    def cost_lines(self) -> list[str]:
        """The count and cost in words (``12 cells: 11 inference requests, at most ~9,650 tokens (worst case)``)
        and, live, what was left out because it raises the cost; empty without a plan."""
        if self.summary is None:
            return []
        out = [f"{self.summary.cells} cell{'s' if self.summary.cells != 1 else ''}: {self.summary.cost}"]
        if self.summary.left_out:
            out.append(f"left out (they raise the cost): {', '.join(self.summary.left_out)}")
        return out

    def lines(self) -> list[str]:
        """The choices, the count and cost, and the message or send status: what a headless run records."""
        design = {v: k for k, v in DESIGN_CHOICES}.get(self.chosen_design, self.chosen_design)
        budget = _safe_budget(self.budget)
        out = [f"profile: {self.profile}", f"design: {design}",
               f"factors: {', '.join(self.chosen_factors) or '(none)'}",
               f"budget: {f'{budget} inference requests' if budget else 'no cap'}", *self.cost_lines()]
        if self.message:
            out.append(f"cannot send: {self.message}")
        elif self.gate is not None and self.gate.needed:
            out.append(self.gate.status())
        if self.status:
            out.append(self.status)
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    # -- sending ------------------------------------------------------------------------------------------------------
    def send(self, **overrides: Any) -> RunResult | None:
        """Send the chosen plan (:meth:`MatrixPlan.run` with the parameters' credential, budget and run options,
        ``overrides`` on top), then read the run back and compute its first-look findings.

        Returns the :class:`lanelab.matrix.runner.RunResult`, or None when nothing was sent: the choice is invalid
        (:attr:`message`), live mode is not confirmed yet, or the runner refused (no server, no credential…); then
        :attr:`status` says why, in one line. Never raises a :class:`lanelab.errors.UserError`.
        """
        if not self.ready or self.plan is None or self.gate is None:
            self.status = f"Not sent: {self.message or 'nothing is chosen.'}"
            return None
        try:
            self.gate.require()
        except NotConfirmed as exc:
            self.status = f"Not sent: {exc}"
            return None
        total = len(self.plan.cells)
        self._advance(0, total, total)
        options = {"progress": False, **self.run_options, **overrides}
        options["on_progress"] = lambda done, todo: self._advance(done, todo, total)
        self.status = f"Sending {total} cells…"
        try:
            result = self.plan.run(credential=self.credential, budget=_budget(self.budget), gate=self.gate,
                                   **options)
        except UserError as exc:
            self.status = f"Not sent: {exc}"
            return None
        self.result = result
        self._advance(result.sent, result.sent + result.not_sent, total)
        extra = [f"{n} {what}" for n, what in ((result.resumed, "already in the run"),
                                                (result.not_sent, "not sent")) if n]
        self.status = (f"Sent {result.sent} cell{'s' if result.sent != 1 else ''}"
                       f"{' (' + ', '.join(extra) + ')' if extra else ''} to run {result.run_id}."
                       + (f" {result.stopped}." if result.stopped else ""))
        self.findings = self._first_look(result)
        return result

    def _advance(self, done: int, todo: int, total: int) -> None:
        """Progress of the plan: cells resumed from an earlier run count as done."""
        self.progress = (total - todo + done, total)
        if self.on_progress is not None:
            self.on_progress(*self.progress)

    def _first_look(self, result: RunResult) -> Findings | None:
        from lanelab.findings import report
        from lanelab.runs import load_run

        try:
            return report.collect(load_run(result.path))
        except UserError as exc:
            self.status += f" The findings could not be read: {exc}"
            return None

    def chart_png(self) -> bytes | None:
        """The first-look chart of the last send (each single change and its outcome, or the heatmap), as PNG
        bytes; None before a send or when the run holds nothing to chart."""
        if self.findings is None or not self.findings.overview:
            return None
        return self.findings.png(self.findings.overview)

    def answer(self) -> str:
        """The first-look answer of the last send in words ("" before a send)."""
        if self.findings is None:
            return ""
        return self.findings.verdict.sentence


def _safe_budget(value: Any) -> int | None:
    try:
        return _budget(value)
    except InputError:
        return None
