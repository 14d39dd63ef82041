"""What goes on the wire and what comes back, as data; no module here knows about runs, credentials or notebooks.

- ``spec``: :class:`~lanelab.wire.spec.RequestSpec` and :class:`~lanelab.wire.spec.Observation`, ``build_request``
  (the one place a request is built; it refuses Claude Code's own request, see ``attestation``).
- ``send``: ``send`` / ``asend`` through the kit's one HTTP client factory; ``observe``: a response as an Observation.
- ``unified``: the unified rate-limit headers and the billing lane they imply (``data/lanes.toml``).
- ``classify``: an outcome class per response (``data/outcomes.toml``); ``usage``: the usage endpoint's shape.
- ``drift``: what a response carried that the kit has never seen ("new to this kit").
- ``diff``: the structural, annotated difference of two requests; ``exchanges``: reading a capture file.
- ``attestation``: recognising (never generating) Claude Code's billing attestation block and headers.
"""
