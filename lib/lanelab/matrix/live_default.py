"""What a live matrix sends when the user names nothing, and which levels a live plan leaves out unless asked for.

Live mode spends the user's own plan, so its defaults are small: the live default plan (``data/live_default.toml``:
one factor at a time over a handful of levels around the most reported triggers) fits the default live budget
(:data:`lanelab.matrix.budget.DEFAULT_LIVE_BUDGET`). When the user names factors but not their levels, a live plan
leaves out the levels that raise the cost (:func:`costly_levels`: a large ``max_tokens``, streaming, a body more than
:data:`COSTLY_EXTRA_TOKENS` tokens longer than the baseline's) and lists them with their cost; naming a level
(``--levels max_tokens=128000``) brings it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, load_cached, read_toml
from lanelab.matrix.budget import estimate_tokens
from lanelab.matrix.factors import Factor, apply_levels, baseline_levels, context_for
from lanelab.matrix.profiles import Profile, minimal_spend

__all__ = ["COSTLY_EXTRA_TOKENS", "LeftOut", "LiveDefault", "costly_levels", "live_default_path",
           "load_live_default"]

#: A level whose request costs this many more worst-case tokens than the baseline's is left out of live defaults.
COSTLY_EXTRA_TOKENS = 1000


class LiveDefaultError(DataFileError):
    """``data/live_default.toml`` is missing or invalid."""


@dataclass(frozen=True)
class LiveDefault:
    """The live default plan: a design and, per factor, the levels to send besides the baseline."""

    design: str
    levels: dict[str, list[str]]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def factors(self) -> list[str]:
        return list(self.levels)


def live_default_path() -> Path:
    return data_file("live_default.toml")


def _build(path: Path) -> LiveDefault:
    raw = read_toml(path, "the live default plan", error=LiveDefaultError)
    levels = raw.get("levels")
    if not isinstance(levels, dict) or not levels or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in levels.values()):
        raise LiveDefaultError(f"{path} needs a [levels] table of factor = [level names].")
    sources = s if isinstance(s := raw.get("sources"), dict) else {}
    return LiveDefault(design=str(raw.get("design", "ofat")), levels={str(k): list(v) for k, v in levels.items()},
                       sources={str(k): str(v) for k, v in sources.items()})


def load_live_default() -> LiveDefault:
    """The live default plan from ``data/live_default.toml`` (read once per file version).

    Raises :class:`LiveDefaultError` when the file is missing or invalid."""
    return load_cached(live_default_path(), _build, "the live default plan", LiveDefaultError)


@dataclass(frozen=True)
class LeftOut:
    """A level a live plan leaves out unless named: what it adds to one request's worst-case tokens, and whether it
    turns streaming on."""

    factor: str
    level: str
    extra_tokens: int
    streams: bool = False

    @property
    def flag(self) -> str:
        return f"{self.factor}={self.level}"

    def __str__(self) -> str:
        parts = [f"+{self.extra_tokens:,} worst-case tokens per request"] if self.extra_tokens > 0 else []
        if self.streams:
            parts.append("streams the answer")
        return f"{self.flag} ({', '.join(parts) or 'costly'})"


def costly_levels(profile: Profile, catalog: Mapping[str, Factor], factors: Sequence[str]) -> list[LeftOut]:
    """The levels of ``factors`` that raise a live request's cost (see the module docstring), in catalog order.

    Each level is measured one factor at a time from the baseline, with live minimal spend applied as the runner does.
    Raises :class:`lanelab.matrix.factors.UnknownFactor` for a factor the catalog lacks.
    """
    base_levels = baseline_levels(catalog, factors)
    ctx = context_for(profile.spec)

    def spec_for(levels: Mapping[str, str]):
        return minimal_spend(apply_levels(profile.spec, levels, catalog, ctx), levels, catalog)

    base = spec_for(base_levels)
    base_cost = estimate_tokens(base)
    base_streams = isinstance(base.body, dict) and base.body.get("stream") is True
    out = []
    for name in factors:
        factor = catalog[name]
        for level in factor.levels:
            if level == factor.baseline:
                continue
            spec = spec_for({**base_levels, name: level})
            extra = estimate_tokens(spec) - base_cost
            streams = isinstance(spec.body, dict) and spec.body.get("stream") is True and not base_streams
            if extra > COSTLY_EXTRA_TOKENS or streams:
                out.append(LeftOut(name, level, max(extra, 0), streams))
    return out
