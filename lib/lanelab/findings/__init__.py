"""The findings stage (notebook 03): questions asked of the tidy run table, the answers, the figures and the report.

- :mod:`~lanelab.findings.frame`: ``cell_results``, ``outcome_by_factor``, ``flips_from_baseline``, ``matrix``,
  ``factor_effects``, ``lane_signals``, ``compare_runs`` … (each returns a DataFrame)
- :mod:`~lanelab.findings.answers`: ``answer_all`` (the seed report's three questions, ``.to_frame()``)
- :mod:`~lanelab.findings.plots`: figures that display themselves in a notebook
- :mod:`~lanelab.findings.report`: ``collect`` the findings of runs, ``write_reports`` (HTML and Markdown); the
  findings open with the answer, then what the responses carried that is new to this kit (``Findings.new_to_kit()``,
  from :mod:`lanelab.wire.drift`) and the request's caveats (``Findings.caveats``); ``timeline_for`` adds the timeline
  below (simulator runs, or when asked)
- :mod:`~lanelab.findings.verdict`: the answer in a sentence the findings open with (``Verdict``, ``lead_verdict``)
- :mod:`~lanelab.findings.render`: the HTML and Markdown templates (``templates/``) and their escaping helpers
- :mod:`~lanelab.findings.bundles`: a findings bundle (one run, redacted, scrubbed of identifiers) to share, and the
  comparison of bundles from several people
- :mod:`~lanelab.findings.explorer`: notebook 03's explorer (a cell's diff against the baseline and its response)
- :mod:`~lanelab.findings.remedies`: what reports say works, per cause (``data/remedies.toml``)
- :mod:`~lanelab.findings.timeline`: ``timeline(profile_or_capture)``, the same request under every dated simulator
  snapshot (``.to_frame()``, ``.changes()``, ``.chart()``): when a change on the service side moved the traffic

The runs themselves and their one tidy table come from :mod:`lanelab.runs` (``load_run(path).to_frame()``).
"""

from __future__ import annotations

__all__ = ["answers", "bundles", "explorer", "frame", "plots", "remedies", "render", "report", "timeline", "verdict"]
