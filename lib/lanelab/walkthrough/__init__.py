"""The walkthrough stage (notebook 04, ``python -m lanelab capture|diff|bisect``): what a client really sends, and
the smallest change that flips its verdict.

- ``capture``: a loopback recording proxy (what went on the wire, redacted).
- ``to_profile``: a captured request as a reusable profile.
- ``diff``: a structural, annotated diff of two requests.
- ``bisect``: delta debugging over the differences; :func:`~lanelab.walkthrough.bisect.bisect_to_run` stores every
  probe as a cell of a run.

Import from the modules; the package itself exports nothing.
"""

from __future__ import annotations

__all__: list[str] = []
