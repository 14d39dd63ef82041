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
# # 03 · Findings: what the runs say, and a report you can share
#
# Notebook 02 sent one request in many variants and recorded what each response said. This notebook turns those runs
# into evidence: the results matrix, the factors that flip the verdict on their own (minimal pairs), the lane signals
# beside the plan's headroom, and explicit answers to the three questions of the seed report (hermes-agent #32243).
# It ends by writing `reports/findings.html` (self-contained) and `reports/findings.md` (paste into a GitHub issue),
# both redacted; the writer refuses if a secret is still found.
#
# Runs made against the simulator are a model built from public reports; live observations always outrank it.

# %% tags=["parameters"]
from lanelab.config import Settings

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
RUNS = None  # None: every run under LANELAB_OUT/runs (notebook 02), else the curated samples; or a list of paths
ROWS, COLS = None, None  # heatmap axes; None: the factors that flip the verdict most

# %%
from lanelab.findings import report
from lanelab.runs import load_runs, run_paths

paths = RUNS or run_paths(settings)
findings = report.collect(load_runs(paths), rows=ROWS, cols=COLS)
report.metadata(findings)

# %% [markdown]
# ## 1 · The results matrix
#
# Outcome by the two factors that matter most (every other factor as the cell set it), for the first run. Each square
# shows the HTTP status and a short outcome; `*` marks a square whose cells disagree (they differ in another factor).

# %%
from lanelab.findings.frame import matrix

matrix(findings.df, findings.rows, findings.cols, where={"run_id": findings.runs[0].run_id})

# %%
findings.figure("heatmap")

# %% [markdown]
# ## 2 · Which single change flips the verdict?
#
# A *minimal pair* is two cells that differ in one factor alone. `lane_flips` counts the pairs where that change moves
# the request onto or off the plan; `flips` counts any change of outcome. The cells listed support each line.

# %%
findings.effects

# %%
findings.figure("effects")

# %% [markdown]
# ## 3 · Lane signals: "my plan is unused, yet…"
#
# What the `anthropic-ratelimit-unified-*` headers said per cell: the representative claim, the 5-hour and 7-day
# utilization, and the state of the extra-usage pool (overage status and disabled reason), beside the outcome.

# %%
from lanelab.findings.frame import lane_signals

lane_signals(findings.df)

# %%
findings.figure("headroom")

# %% [markdown]
# ### Usage before and after
#
# When a run read the free usage endpoint before and after sending (notebook 02 does), this is what moved: plan
# windows move for plan-billed cells, the extra-usage credits for cells billed there.

# %%
from IPython.display import display

for chart in findings.usage_figures():
    display(chart)
findings.usage_changes() if findings.usage else "No usage snapshots in these runs."

# %% [markdown]
# ## 4 · Answers
#
# Each answer is computed from the data, names the cells that support it, and says which run would settle it when
# this one cannot.

# %%
for line in findings.diagnosis:
    print(line)
findings.answers.to_frame()

# %% [markdown]
# ## 5 · Two runs side by side
#
# With two runs of the same design (two simulator policies, or two live runs on different days), the same cell ids
# are compared and the cells whose outcome, status or lane changed are listed.

# %%
from lanelab.findings.frame import compare_runs

compare_runs(findings.df, changed_only=True) if findings.comparison is not None else "only one run"

# %% [markdown]
# ## 6 · The shareable report
#
# Both files pass through `lanelab.redact`; if a secret (including any token in the kit's credential store) is still
# found, nothing is written.

# %%
html_path, md_path = report.write_reports(findings, settings.out, secrets=report.stored_secrets(settings))
print(f"HTML report: {html_path}")
print(f"Markdown report: {md_path} (figures beside it)")
