"""The plan of a matrix: a profile × a design × factors, expanded into cells a notebook previews and then sends.

:meth:`MatrixPlan.build` expands the design, :meth:`MatrixPlan.describe` shows the cells and their estimated cost
(nothing is sent), and :meth:`MatrixPlan.run` sends them through :func:`lanelab.matrix.runner.run_matrix`, looking
the credential up itself. In live mode every cell is planned with the minimal-spend defaults (``max_tokens`` 1, no
streaming unless a factor asks for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lanelab.config import Settings
from lanelab.matrix import designs
from lanelab.matrix import factors as factors_mod
from lanelab.matrix import profiles as profiles_mod
from lanelab.matrix.budget import Budget
from lanelab.matrix.designs import Cell, DesignSummary
from lanelab.matrix.errors import RunnerError
from lanelab.matrix.factors import Factor
from lanelab.matrix.profiles import Profile
from lanelab.matrix.runner import RunOptions, RunResult, run_matrix
from lanelab.matrix.sender import PlannedCell
from lanelab.matrix.tokens import TokenFor

__all__ = ["MatrixPlan", "PlannedCell", "plan_cells"]


def plan_cells(cells: Iterable[Cell], profiles: Mapping[str, Profile] | None, catalog: Mapping[str, Factor],
               minimal: bool = False) -> list[PlannedCell]:
    """Design cells as :class:`PlannedCell` s, each with the request spec it sends.

    ``minimal`` applies the live minimal-spend defaults (:func:`lanelab.matrix.profiles.minimal_spend`). Returns the
    planned cells in design order. Raises :class:`lanelab.matrix.profiles.UnknownProfile` or
    :class:`lanelab.matrix.factors.UnknownFactor` for a cell naming something the catalogs do not hold.
    """
    out = []
    for cell in cells:
        spec = designs.build_spec(cell, profiles, catalog)
        if minimal:
            spec = profiles_mod.minimal_spend(spec, cell.levels, catalog)
        out.append(PlannedCell(cell_id=cell.cell_id, profile=cell.profile, levels=dict(cell.levels), spec=spec))
    return out


@dataclass
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

    @classmethod
    def build(cls, profile: str, design: str = "ofat", factors: Iterable[str] | None = None,
              settings: Settings | None = None, credential_labels: Iterable[str] = ()) -> MatrixPlan:
        """Expand ``design`` over ``factors`` for ``profile`` (``factors`` None: every factor but ``credential``,
        which needs ``credential_labels``). ``settings`` None reads the environment; it also serves :meth:`run`.

        Returns the plan (nothing is sent). Raises :class:`RunnerError` for an unknown factor,
        :class:`lanelab.matrix.profiles.UnknownProfile` for an unknown profile, and ``ValueError`` for an unknown
        design.
        """
        settings = settings or Settings.from_env()
        catalog = factors_mod.load_factors()
        names = [f for f in catalog if f != "credential"] if factors is None else list(factors)
        unknown = [f for f in names if f not in catalog]
        if unknown:
            raise RunnerError(f"Unknown factor(s): {', '.join(unknown)}.", f"Choose from: {', '.join(catalog)}.")
        if "credential" in names:
            catalog = factors_mod.with_credentials(catalog, credential_labels)
        profile_map = {profile: profiles_mod.load_profile(profile)}
        cells = designs.design(design, profile, catalog, names)
        return cls(profile, design, names, cells, catalog, profile_map, live=settings.mode == "live",
                   settings=settings)

    @property
    def baseline_cell_id(self) -> str:
        """The first cell (for one-factor-at-a-time: every factor at its baseline)."""
        return self.cells[0].cell_id

    def describe(self) -> DesignSummary:
        """Cell count and estimated cost; nothing is sent.

        Returns a :class:`lanelab.matrix.designs.DesignSummary`: ``str()`` is one line, ``to_frame()`` one row per
        cell, and it renders as that table in a notebook. Raises nothing beyond :func:`plan_cells`' errors.
        """
        return designs.describe(self.cells, self.profiles, self.catalog, minimal=self.live)

    def planned(self) -> list[PlannedCell]:
        """The cells with the request each sends (live: minimal spend); see :func:`plan_cells`."""
        return plan_cells(self.cells, self.profiles, self.catalog, minimal=self.live)

    def run(self, credential: str | None = None, budget: Budget | int | None = None, *,
            token: str | None = None, token_for: TokenFor | None = None, options: RunOptions | None = None,
            **overrides: Any) -> RunResult:
        """Send the plan, looking the ``credential`` label up itself (the kit's store, the read-only importers; in
        sim mode a fresh simulator token when nothing holds the label). ``result.credential_note`` says which.

        ``budget`` caps inference requests (an int) or is a :class:`Budget`; it is required in live mode. Any other
        :class:`RunOptions` field may be passed as a keyword (``run_id``, ``concurrency``, ``usage_snapshots``,
        ``base_url``…). ``token`` (one plain token for every label) and ``token_for(label)`` are for tests.

        Returns a :class:`lanelab.matrix.runner.RunResult`. Raises what :func:`lanelab.matrix.runner.run_matrix`
        raises (no server, live without opt-in or budget, a plan over the budget, a credential not found), always
        before anything is sent; ``TypeError`` for a keyword that is not an option.
        """
        options = (options or RunOptions()).with_(**overrides)
        if options.settings is None:
            options = options.with_(settings=self.settings)
        caveats = self.profiles[self.profile].caveats if self.profile in self.profiles else []
        if caveats:  # in the run header, so findings can say them (e.g. "for the request without the block")
            options = options.with_(header_extra={**options.header_extra, "profile_caveats": caveats})
        if budget is not None:
            options = options.with_(budget=Budget(max_requests=budget) if isinstance(budget, int) else budget)
        return run_matrix(self.planned(), options, profile=self.profile, design=self.design, factors=self.factors,
                          credential=credential, token=token, token_for=token_for)
