# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Findings: the answer, the evidence, and a report you can share
#
# Notebook 02 sent one request in many variants and recorded what each response said. This notebook turns those runs
# into an answer: what moves this client's request between billing lanes (the exact element, before and after), the
# evidence behind it, and the remedy, with anything the responses carried that the kit has never seen listed right
# below it. Then the charts and tables that support it, a cell explorer, when the same request would have been billed
# where under each dated snapshot of the service, the three questions of the first public report
# (hermes-agent #32243), and findings from other people side by side. It ends by
# writing `findings.html` (self-contained), `findings.md` (paste into a GitHub issue) and a findings bundle (one
# redacted JSON file to share), all redacted; the writers refuse if a secret or an account identifier is still found.
#
# Runs made against the simulator are a model built from public reports; live observations always outrank it. Words
# used here are explained in `docs/glossary.md`.

# %% tags=["parameters"]
from lanelab.config import Settings

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
RUNS = None  # None: every run under LANELAB_OUT/runs (notebook 02), else the curated samples; or a list of paths
ROWS, COLS = None, None  # heatmap axes for designs that fill one; None: the factors that change the outcome most
BUNDLES = None  # None: section 8 shows the examples in data/bundles/ (kept out of your report); or bundle files
PLAN = None  # your plan type for the bundle you share ("max", "pro"); None: recorded as unknown
TIMELINE = None  # None: in sim mode only; True: also beside live runs (always the embedded simulator); False: never

# %% [markdown]
# ## The answer
#
# Generated from the runs, never written by hand (a diagnose run's verdict takes precedence when one exists). Below
# it: what was read, with bisect probes counted apart from matrix cells and any line that could not be read listed
# with the reason.

# %%
import pandas as pd
from IPython.display import Markdown, display
from lanelab.findings import bundles, report
from lanelab.runs import load_runs, run_paths

pd.set_option("display.max_colwidth", 200)  # the tables below quote the server's messages: shown whole

paths = RUNS or run_paths(settings)
others = bundles.load_bundles(BUNDLES if BUNDLES is not None else bundles.shipped_bundles())
runs = load_runs(paths)
when = TIMELINE if TIMELINE is not None else (None if settings.mode == "sim" else False)
findings = report.collect(runs, rows=ROWS, cols=COLS, bundles=others if BUNDLES is not None else [],
                          timeline=report.timeline_for(runs, asked=when))  # the report compares only bundles you gave
display(findings.verdict)
Markdown("\n".join(f"- {line}" for line in findings.input_lines()))

# %% [markdown]
# ### New to this kit
#
# Anything the responses carried that the kit has never seen (a rate-limit header, a representative claim, an error
# code, type or message, a usage field) is listed verbatim with the cells where it appeared. It is never mapped to a
# guess: a lane read from it is "unknown". Please report such items so the kit can learn them.

# %%
new_items = findings.new_to_kit()
new_items if len(new_items) else Markdown("*Nothing in these responses was new to this kit.*")

# %% [markdown]
# What the findings must say about the request itself, as the run recorded it: for example, a client that sends a
# billing attestation block (the kit never stores or sends one, so the findings are for the request without it).

# %%
Markdown("\n".join(f"- {c}" for c in findings.caveats) if findings.caveats
         else "*No caveat about the request in these runs.*")

# %%
report.metadata(findings)

# %% [markdown]
# ## 1 · What moves the request between lanes when changed on its own
#
# For each factor, the pairs of requests that differ in it alone: on the left, how many end one on the plan and the
# other not (the billing verdict); on the right, how many end differently in another way (one refusal or error for
# another). A factor that only swaps one error for another never moves a request onto the plan.

# %%
findings.figure("effects") if "effects" in findings.figures() else Markdown("*No factor varied in these runs.*")

# %%
report.effects_table(findings.effects)

# %% [markdown]
# ## 2 · Each change on its own
#
# For a one-factor-at-a-time run: the request as sent, then every variant that changes one thing, ranked (billed to
# the plan first, then those that end differently, then those that end like the request as sent). Designs that fill
# a grid (full, pairwise) get the results matrix as a heatmap instead.

# %%
findings.figure(findings.overview) if findings.overview else Markdown("*Nothing to show: no cells.*")

# %%
findings.overview_table()

# %% [markdown]
# ## 3 · Explore one cell
#
# Pick a cell: its request against the request as sent (the annotated diff of notebook 04: what differs, and what
# public reports say about it), and the response (status, the server's message verbatim, the lane signals of the
# response headers, and in sim mode which simulator rule answered).

# %%
from lanelab.findings.explorer import ExplorerWidget, explorer_for

explorer, rules_note = explorer_for(findings, settings)
display(Markdown(f"*{rules_note}*"))
ExplorerWidget(explorer)

# %% [markdown]
# The cell the answer rests on, shown here as well so the evidence stays in the saved notebook (when the answer comes
# from a diagnose run, whose requests are not matrix cells: the requests it rests on):

# %%
evidence = [c for c in findings.verdict.cells if c in explorer.cell_ids]
explorer.select(evidence[-1]) if evidence else findings.verdict_cells()

# %% [markdown]
# ## 4 · The plan's headroom: "my plan is unused, yet…"
#
# What the `anthropic-ratelimit-unified-*` headers said per cell, in percent of each plan window used, beside the
# outcome; then the usage endpoint before and after the run (percent of each window; extra usage's money in its own
# table, in its currency).

# %%
findings.figure("headroom") if "headroom" in findings.figures() else Markdown("*No cells.*")

# %%
report.lanes_table(findings.df)

# %%
for chart in findings.usage_figures():
    display(chart)
for run in findings.runs:  # usage fields the kit does not know, shown as such (verbatim)
    unknown_fields = report.usage_unknown(run)
    if len(unknown_fields):
        display(Markdown(f"**New to this kit** in the usage snapshots of `{run.run_id}`, verbatim:"))
        display(unknown_fields)
findings.usage_changes() if findings.usage else Markdown("*No usage snapshots in these runs.*")

# %% [markdown]
# ## 5 · When would this request have been billed where?
#
# The same request (the runs' profile) sent to the embedded simulator once per dated snapshot of the service, oldest
# first. The request never changes, so a step where the answer moves is a change on the service side, not the
# client's. This is the simulator's model of each date, built from public reports: it runs on this machine and sends
# nothing to Anthropic. By default it is computed in sim mode only (`TIMELINE = True` adds it beside live runs).

# %%
if findings.timeline is not None:
    display(findings.figure("timeline"))
    display(report.timeline_table(findings.timeline))
    for caveat in findings.timeline.caveats:
        display(Markdown(f"*{caveat}*"))
else:
    display(Markdown("*No timeline here: in live mode it is added only when asked (`TIMELINE = True`; it is the "
                     "model described above, never sent to the live service), and it needs a profile of "
                     "data/profiles.*"))

# %% [markdown]
# ## 6 · The three questions of the first report
#
# Each answer is computed from the data, names the cells that support it, and says which run would settle it when
# this one cannot.

# %%
findings.answers

# %% [markdown]
# ## 7 · Two runs side by side
#
# With two runs of the same design (two simulator policies, or two live runs on different days), the same cells are
# compared and the ones that ended differently are listed.

# %%
if findings.comparison is not None:
    summary, changed = report.comparison_table(findings)
    display(Markdown(summary))
    display(changed)
else:
    display(Markdown("*Only one run: nothing to compare it with.*"))

# %% [markdown]
# ## 8 · Findings from other people
#
# Is the verdict the same across accounts, plans and dates? Each findings bundle is one redacted file that someone
# attached to an issue: one row per bundle, the verdict per request shape, and where they agree and differ. Your own
# runs are the first rows. Bundles are checked for secrets and account identifiers when they are written and again
# when they are loaded. The examples in `data/bundles/` are two simulator runs and one hand-made bundle (it says so);
# they are shown here only, never in the report you share. Set `BUNDLES` to bundle files from other people to compare
# with them in the report too.

# %%
mine = [bundles.make_bundle(findings, run_id=r.run_id, plan=PLAN, note="this notebook")
        for r in findings.matrix_runs if len(findings.df)]
bundles.compare_bundles([*mine, *others])

# %% [markdown]
# ## 9 · The shareable report and your bundle
#
# Both report files pass through `lanelab.redact`; if a secret (including any token in the kit's credential store)
# is still found, nothing is written. The bundle is what you attach to an issue so others can compare.

# %%
secrets = report.stored_secrets(settings)
html_path, md_path = report.write_reports(findings, settings.out, secrets=secrets)
written = bundles.write_bundles(findings, settings.out, plan=PLAN, secrets=secrets) if len(findings.df) else []
Markdown("\n".join([f"- HTML report: `{html_path}`", f"- Markdown report: `{md_path}` (figures beside it)",
                    *[f"- Findings bundle: `{p}`" for p in written]]))
