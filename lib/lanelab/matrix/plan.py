"""The plan of a matrix: a profile × a design × factors, expanded into cells a notebook previews and then sends.

:meth:`MatrixPlan.build` expands the design, :meth:`MatrixPlan.describe` shows the cells and their cost (inference
requests and worst-case tokens; nothing is sent), :meth:`MatrixPlan.gate` is what a user confirms before a live run,
and :meth:`MatrixPlan.run` sends the cells through :func:`lanelab.matrix.runner.run_matrix`, looking the credential
up itself.

Live mode: every cell is planned with the minimal-spend defaults (``max_tokens`` 1, no streaming unless a factor asks
for it); with no factors named the plan is the live default (:mod:`lanelab.matrix.live_default`), which fits the
default budget; with factors named but not their levels, the levels that raise the cost are left out and listed. A
plan over its budget is refused before anything is sent, with its cost and the cheaper alternative. A reference-only
profile is refused when the plan is built.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lanelab.config import LIVE_API_BASE, Settings
from lanelab.live import Confirmation, LiveGate
from lanelab.matrix import designs
from lanelab.matrix import factors as factors_mod
from lanelab.matrix import profiles as profiles_mod
from lanelab.matrix.budget import Budget, BudgetGuard, Cost, as_budget
from lanelab.matrix.designs import Cell, DesignSummary
from lanelab.matrix.errors import InvalidOption, RunnerError
from lanelab.matrix.factors import Factor
from lanelab.matrix.live_default import LeftOut, costly_levels, load_live_default
from lanelab.matrix.profiles import Profile
from lanelab.matrix.runner import RunOptions, RunResult, run_matrix
from lanelab.matrix.sender import PlannedCell
from lanelab.matrix.tokens import TokenFor, TokenSource

__all__ = ["MatrixPlan", "PlannedCell", "diagnose_available", "plan_cells"]

DEFAULT_DESIGN = "ofat"
#: :attr:`MatrixPlan.origin` of the live default plan.
LIVE_DEFAULT = "the live default plan"


def diagnose_available() -> bool:
    """Whether this kit has the ``diagnose`` command (named as the cheaper alternative when it exists)."""
    return importlib.util.find_spec("lanelab.commands.diagnose") is not None


def plan_cells(cells: Iterable[Cell], profiles: Mapping[str, Profile] | None, catalog: Mapping[str, Factor],
               minimal: bool = False) -> list[PlannedCell]:
    """Design cells as :class:`PlannedCell` s, each with the request spec it sends.

    ``minimal`` applies the live minimal-spend defaults (:func:`lanelab.matrix.profiles.minimal_spend`). Returns the
    planned cells in design order. Raises :class:`lanelab.matrix.profiles.UnknownProfile` or
    :class:`lanelab.matrix.factors.UnknownFactor` for a cell naming something the catalogs do not hold, and
    :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a reference-only profile.
    """
    out = []
    for cell in cells:
        spec = designs.build_spec(cell, profiles, catalog)
        if minimal:
            spec = profiles_mod.minimal_spend(spec, cell.levels, catalog)
        out.append(PlannedCell(cell_id=cell.cell_id, profile=cell.profile, levels=dict(cell.levels), spec=spec))
    return out


def _with_baseline(catalog: Mapping[str, Factor], name: str, levels: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(levels))
    base = catalog[name].baseline
    return chosen if base in chosen else [base, *chosen]


def _names(value: Any, what: str) -> list[str]:
    """Names as a notebook gives them: several (a list, tuple…) or one (a string, not read letter by letter).
    Raises :class:`InvalidOption` for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    raise InvalidOption(f"{what} takes a list of names; found {type(value).__name__}.")


@dataclass(repr=False)
class MatrixPlan:
    """A profile × design × factors, expanded into cells: what the notebook previews and the CLI sends."""

    profile: str
    design: str
    factors: list[str]
    cells: list[Cell]
    catalog: dict[str, Factor]
    profiles: dict[str, Profile]
    live: bool = False
    settings: Settings | None = field(default=None, repr=False)
    #: the levels each factor was limited to (None: all of them)
    levels: dict[str, list[str]] | None = None
    #: what the plan is: "the live default plan", "named factors" …
    origin: str = ""
    #: levels a live plan left out because they raise the cost
    left_out: list[LeftOut] = field(default_factory=list)

    @classmethod
    def build(cls, profile: str | Profile, design: str | None = None, factors: Iterable[str] | None = None,
              settings: Settings | None = None, credential_labels: Iterable[str] = (),
              levels: Mapping[str, Iterable[str]] | None = None) -> MatrixPlan:
        """Expand ``design`` (default ``ofat``) over ``factors`` for ``profile`` (a name from data/profiles, or a
        :class:`~lanelab.matrix.profiles.Profile`, e.g. a capture or a profile file read by
        :func:`lanelab.matrix.from_capture.profile_for`). ``settings`` None reads the environment; it also serves
        :meth:`run`.

        Factors: ``None`` means every factor but ``credential`` (which needs ``credential_labels``) in sim mode, and
        the live default plan in live mode. ``levels`` (``{factor: [level, …]}``) limits factors to those levels and
        names the factors when ``factors`` is None. In live mode a named factor without named levels leaves out the
        levels that raise the cost (listed in :attr:`left_out` and by :meth:`describe`).

        Returns the plan (nothing is sent). Raises :class:`RunnerError` for an unknown factor,
        :class:`lanelab.matrix.factors.UnknownFactor` for an unknown level,
        :class:`lanelab.matrix.profiles.UnknownProfile` for an unknown profile,
        :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a reference-only one (never sent), ``UserError``
        for an unknown design, and :class:`lanelab.matrix.errors.InvalidOption` for a profile, settings, factors or
        levels of the wrong type (one name may be given as a string: ``factors="tools"``).
        """
        if not isinstance(profile, (str, Profile)):
            raise InvalidOption(f"A plan's profile is a profile name or a Profile; found {type(profile).__name__}.",
                                "E.g. MatrixPlan.build('hermes-0.14.0', 'ofat', ['tools']).")
        if settings is not None and not isinstance(settings, Settings):
            raise InvalidOption(f"settings takes a lanelab.config.Settings; found {type(settings).__name__}.",
                                "Leave it out to read the environment, or pass Settings.from_env().")
        settings = settings or Settings.from_env()
        live = settings.mode == "live"
        catalog = factors_mod.load_factors()
        prof = profiles_mod.ensure_sendable(profile)  # a name, or a Profile (a file or capture: from_capture.profile_for)
        profile = prof.name
        if levels is not None and not isinstance(levels, Mapping):
            raise InvalidOption(f"levels takes a dict of factor → level names; found {type(levels).__name__}.")
        named_levels = {str(k): [str(x) for x in _names(v, f"levels[{k!r}]")] for k, v in (levels or {}).items()}
        empty = [k for k, v in named_levels.items() if not v]
        if empty:
            raise InvalidOption(f"No level named for {', '.join(empty)}: levels={{'{empty[0]}': []}} would plan only "
                                "the request as sent.", f"Name at least one level, or leave {empty[0]!r} out.")
        factors = None if factors is None else _names(factors, "factors")
        credential_labels = _names(credential_labels, "credential_labels")
        if live and factors is None and not named_levels:
            default = load_live_default()
            names, origin = default.factors, LIVE_DEFAULT
            named_levels = {f: list(v) for f, v in default.levels.items()}
            design = design or default.design
        elif factors is None and named_levels:
            names, origin = list(named_levels), "named levels"
        elif factors is None:
            names, origin = [f for f in catalog if f != "credential"], "every factor"
        else:
            names, origin = list(factors), "named factors"
        design = design or DEFAULT_DESIGN
        unknown = [f for f in [*names, *named_levels] if f not in catalog]
        if unknown:
            raise RunnerError(f"Unknown factor(s): {', '.join(dict.fromkeys(unknown))}.",
                              f"Choose from: {', '.join(catalog)}.")
        names += [f for f in named_levels if f not in names]
        if "credential" in names:
            if not credential_labels:
                raise InvalidOption("The credential factor needs the labels to compare: credential_labels=[…] "
                                    "(two saved credentials, e.g. a PKCE login and an imported one).",
                                    "Save or import a second credential (notebook 01), or leave 'credential' out.")
            catalog = factors_mod.with_credentials(catalog, credential_labels)
        left_out: list[LeftOut] = []
        if live:
            costly = costly_levels(prof, catalog, [f for f in names if f not in named_levels])
            for name in names:
                if name in named_levels:
                    continue
                dropped = {c.level for c in costly if c.factor == name}
                if dropped:
                    named_levels[name] = [lv for lv in catalog[name].levels if lv not in dropped]
            left_out = costly
        chosen = {f: _with_baseline(catalog, f, v) for f, v in named_levels.items()} or None
        cells = designs.design(design, profile, catalog, names, **({"levels": chosen} if chosen else {}))
        return cls(profile, design, names, cells, catalog, {profile: prof}, live=live, settings=settings,
                   levels=chosen, origin=origin, left_out=left_out)

    def __repr__(self) -> str:
        """A line a notebook can read (the cells themselves: :meth:`describe`, ``.to_frame()``)."""
        where = "live" if self.live else "sim"
        return (f"<MatrixPlan {self.profile}, {self.design} over {', '.join(self.factors) or 'no factor'}: "
                f"{len(self.cells)} cells, {where}>")

    @property
    def baseline_cell_id(self) -> str:
        """The first cell (for one-factor-at-a-time: every factor at its baseline)."""
        return self.cells[0].cell_id

    def describe(self) -> DesignSummary:
        """Cell count and cost (inference requests, worst-case tokens); in live mode also what was left out because
        it raises the cost, and how to include it. Nothing is sent.

        Returns a :class:`lanelab.matrix.designs.DesignSummary`: ``str()`` is a few lines, ``to_frame()`` one row per
        cell, and it renders as that table in a notebook. Raises nothing beyond :func:`plan_cells`' errors.
        """
        summary = designs.describe(self.cells, self.profiles, self.catalog, minimal=self.live)
        summary.origin = self.origin
        summary.left_out = [str(c) for c in self.left_out]
        if self.left_out:
            flags = " ".join(f"--levels {c.flag}" for c in self.left_out[:2])
            summary.include_hint = (f"to include one, name it: {flags} (CLI) or levels={{'{self.left_out[0].factor}': "
                                    f"['{self.left_out[0].level}']}} (notebook)")
        return summary

    def cost(self) -> Cost:
        """What sending every cell once costs: inference requests and worst-case tokens."""
        return self.describe().cost

    def planned(self) -> list[PlannedCell]:
        """The cells with the request each sends (live: minimal spend); see :func:`plan_cells`."""
        return plan_cells(self.cells, self.profiles, self.catalog, minimal=self.live)

    # -- budget and confirmation --------------------------------------------------------------------------------------
    def cheaper(self) -> str:
        """The cheaper alternative to this plan, as exact commands: the live default plan (or one of its factors, when
        this already is the live default), and ``lanelab diagnose`` when the kit has it."""
        live = self._live_settings()
        if self.origin != LIVE_DEFAULT:
            alt = MatrixPlan.build(self.profiles.get(self.profile, self.profile), settings=live)
            options = [(f"the live default plan ({len(alt.cells)} cells, {alt.cost()}): 'python -m lanelab matrix "
                        f"--live --profile {self.profile}' (notebook 02: FACTORS = None)")]
        else:
            name, levels = next(iter(load_live_default().levels.items()))
            alt = MatrixPlan.build(self.profiles.get(self.profile, self.profile), self.design, settings=live,
                                   levels={name: levels})
            options = [(f"one factor ({len(alt.cells)} cells, {alt.cost()}): 'python -m lanelab matrix --live "
                        f"--profile {self.profile} --levels {name}={','.join(levels)}' "
                        f"(notebook 02: LEVELS = {{{name!r}: {levels!r}}})")]
        if diagnose_available():
            options.append("'python -m lanelab diagnose', which reads your own client's traffic first")
        return "; or ".join(options)

    def _live_settings(self) -> Settings:
        import dataclasses

        base = self.settings or Settings.from_env()
        return dataclasses.replace(base, mode="live", base_url=base.base_url or LIVE_API_BASE)

    def check_budget(self, budget: Budget | int | None) -> Cost:
        """Refuse a plan that does not fit ``budget`` before anything is sent; returns the plan's cost.

        Raises :class:`lanelab.errors.BudgetExceeded` with the cost (requests, worst-case tokens), the cheaper
        alternative (live) and how to raise the budget. A ``budget`` of None fits anything.
        """
        budget = as_budget(budget)
        specs = [c.spec for c in self.planned()]
        if budget is None:
            from lanelab.matrix.budget import plan_cost

            return plan_cost(specs)
        return BudgetGuard(budget).check_plan(specs, how_to_raise="raise the budget (--budget N, or BUDGET = N)",
                                              cheaper=self.cheaper() if self.live else "")

    def confirmation(self, credential: str, budget: Budget | int | None, base_url: str | None = None) -> Confirmation:
        """What a user confirms before this plan is sent live: the notice, host, credential (masked), cost, budget.

        Looks the credential up and checks it may go to the host, sending nothing. Raises what
        :meth:`check_budget` raises, :class:`lanelab.auth.store.CredentialNotFound` and
        :class:`lanelab.auth.issuer.WrongIssuer`.
        """
        settings = self.settings or Settings.from_env()
        base = (base_url or settings.base_url or LIVE_API_BASE).rstrip("/")
        budget = as_budget(budget)
        cost = self.check_budget(budget)
        masked = TokenSource(settings, base, credential).masked()
        return Confirmation(base_url=base, label=credential, masked=masked, requests=cost.requests,
                            tokens=cost.tokens, budget=budget.describe() + ", retries included" if budget else "")

    def gate(self, credential: str, budget: Budget | int | None, confirmed: bool = False,
             base_url: str | None = None) -> LiveGate:
        """The notebook's confirmation state: in live mode a :class:`lanelab.live.LiveGate` over
        :meth:`confirmation` (confirmed when ``confirmed``, the ``CONFIRM_LIVE`` parameter); in sim mode one that
        needs nothing. Raises what :meth:`confirmation` raises (live mode only)."""
        if not self.live:
            return LiveGate(None)
        return LiveGate(self.confirmation(credential, budget, base_url), confirmed=confirmed)

    def run(self, credential: str | None = None, budget: Budget | int | None = None, *,
            token: str | None = None, token_for: TokenFor | None = None, options: RunOptions | None = None,
            gate: LiveGate | None = None, **overrides: Any) -> RunResult:
        """Send the plan, looking the ``credential`` label up itself (the kit's store, the read-only importers; in
        sim mode a fresh simulator token when nothing usable holds the label). ``result.credential_note`` says which.

        ``budget`` caps inference requests (an int) or is a :class:`Budget`; it is required in live mode, and so is
        a confirmation: ``gate`` (from :meth:`gate`, confirmed) or ``confirmed=True``. Any other :class:`RunOptions`
        field may be passed as a keyword (``run_id``, ``concurrency``, ``usage_snapshots``, ``base_url``…).
        ``token`` (one plain token for every label) and ``token_for(label)`` are for tests.

        Returns a :class:`lanelab.matrix.runner.RunResult`. Raises :class:`lanelab.live.NotConfirmed` (live, not
        confirmed) and what :func:`lanelab.matrix.runner.run_matrix` raises (no server, live without opt-in or
        budget, a plan over the budget, a credential not found or bound elsewhere), always before anything is sent;
        :class:`lanelab.matrix.errors.InvalidOption` (also a ``TypeError``) for a keyword that is not an option, or
        an option or budget of the wrong type or range, before anything is written.
        """
        options = (options or RunOptions()).with_(**overrides)
        if options.settings is None:
            options = options.with_(settings=self.settings)
        caveats = self.profiles[self.profile].caveats if self.profile in self.profiles else []
        if caveats:  # in the run header, so findings can say them (e.g. "for the request without the block")
            options = options.with_(header_extra={**options.header_extra, "profile_caveats": caveats})
        if budget is not None:
            options = options.with_(budget=as_budget(budget))
        if gate is not None:
            gate.require()
            options = options.with_(confirmed=True)
        if self.live and options.budget is not None and not options.cheaper:
            options = options.with_(cheaper=self.cheaper())  # named if the runner refuses the plan
        return run_matrix(self.planned(), options, profile=self.profile, design=self.design, factors=self.factors,
                          credential=credential, token=token, token_for=token_for)
