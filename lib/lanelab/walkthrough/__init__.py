"""The walkthrough stage (notebooks 01 and 04; ``python -m lanelab capture|watch|lint|diagnose|bisect``): what a
client really sends, and the smallest change that flips its verdict.

- ``capture``: a loopback recording proxy (what went on the wire, redacted).
- ``watch``: the capture proxy in front of the user's own client, one line per exchange (``--plan-only`` guard).
- ``namespace``: a private network namespace in which the real host names resolve to the proxy.
- ``lint``, ``dumps``: known triggers matched against a capture, profile or client request dump (no request).
- ``items``: what a search applies to a request (lint fixes, fine differences) and the cause in words.
- ``diagnose``: the smallest difference, verified, in a handful of requests.
- ``bisect``: delta debugging over the differences; :func:`~lanelab.walkthrough.bisect.bisect_to_run` stores every
  probe as a cell of a run.

A captured request becomes a profile in :mod:`lanelab.matrix.from_capture`; the diff of two requests is
:mod:`lanelab.wire.diff` and reading a capture file :mod:`lanelab.wire.exchanges`. Import from the modules; the
package itself exports nothing.
"""

from __future__ import annotations

__all__: list[str] = []
