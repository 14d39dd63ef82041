"""The matrix stage (notebook 02, ``python -m lanelab matrix``): one request, many controlled variants, one run.

Modules, in the order a run uses them:

- ``profiles``: the request a named client sends (``data/profiles/``).
- ``from_capture``: a request read from a capture or a profile file as a profile (``capture --to-profile``,
  ``--profile FILE``).
- ``factors``, ``transforms``: what may vary and how each level edits a request (``data/factors.toml``).
- ``designs``: which combinations become cells (one factor at a time, full factorial, pairwise), and their cost.
- ``plan``: :class:`~lanelab.matrix.plan.MatrixPlan`, the notebook's entry point (build, describe, run).
- ``runner``: checks where a run may go, opens or resumes its run file, reports what happened.
- ``sender``: the cells out on the wire (bounded concurrency, retries, each record stored as it lands).
- ``tokens``, ``sim_client``: where credentials come from; the simulator's control routes.
- ``budget``, ``live_guard``: the spend guard and what a user sees before a live run.
- ``live_default``: the live mode's default plan (``data/live_default.toml``), within the default budget.
- ``reach``: requests that never reached the server (not spend; a run stops after a few in a row).
- ``errors``: :class:`~lanelab.matrix.errors.RunnerError`.
- ``picker``, ``widget``, ``confirm``: notebook 02's instrument (choices, cost, confirmation, Send).

Import from the modules (``from lanelab.matrix.plan import MatrixPlan``); the package itself exports nothing.
"""

from __future__ import annotations

__all__: list[str] = []
