"""Ratios of paired measurements, for benchmarks on a machine whose pace drifts.

Each round measures the yardstick and the subject back to back, so both meet the same pace; the ratio is the median
of the rounds' ratios, and :func:`spread` says how far such a median can be trusted (a bootstrap over the rounds).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


def paired(yardstick: Sequence[float], subject: Sequence[float]) -> tuple[float, list[float]]:
    """The median of the rounds' ratios ``yardstick[i] / subject[i]`` (times: the subject's speed relative to the
    yardstick's), and the ratios."""
    each = [y / s for y, s in zip(yardstick, subject)]
    return statistics.median(each), each


def spread(each: Sequence[float], resamples: int = 2000) -> str:
    """Where the median of rounds like these falls 9 times in 10 (``each`` resampled ``resamples`` times), as text."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(each, k=len(each))) for _ in range(resamples))
    return f"{medians[resamples // 20]:.2f}–{medians[resamples - resamples // 20 - 1]:.2f}"
