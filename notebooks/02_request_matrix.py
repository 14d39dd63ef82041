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
# # 02 · The request matrix: which change flips the verdict?
#
# A third-party agent sends one request and gets HTTP 400 "You're out of extra usage" while the plan shows no use.
# Is it the endpoint, the auth header, a beta flag, the user agent, the system prompt, the tool names? Opinions in the
# public threads conflict ([references/hermes.md §1](../docs/references/hermes.md)), so this notebook answers with
# data: it takes the request exactly as a named client sends it (a *profile*), varies it along chosen *factors*, sends
# every variant (a *cell*) and reads what each response says about its billing lane.
#
# The default is the seed report: Hermes 0.14.0, one factor at a time, against the embedded simulator (a model built
# from public reports; live observations always outrank it). In live mode every cell spends a little of your own plan:
# `max_tokens` is 1, nothing streams unless a factor asks for it, the default plan is a handful of cells around the
# most reported triggers (it fits the default budget), and nothing is sent until you confirm the notice, the host,
# the credential and the cost. The kit diagnoses; it never disguises a request as Claude Code.

# %% tags=["parameters"]
import os

from lanelab.auth.issuer import default_label
from lanelab.config import Settings
from lanelab.live import env_flag
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
PROFILE = "hermes-0.14.0"  # a client shape from data/profiles/
DESIGN = None  # None: ofat (one factor at a time); or full, pairwise
FACTORS = None  # None: sim, every factor except credential; live, the small default plan (data/live_default.toml)
LEVELS = None  # e.g. {"tools": ["none", "mcp__"]}; live: also how to include a level left out for its cost
CREDENTIAL = default_label(settings.mode)  # sim-pkce or live-pkce: what notebook 01 saves (the CLI's default too)
BUDGET = None if settings.mode == "sim" else DEFAULT_LIVE_BUDGET  # live: most inference requests, retries included
CONFIRM_LIVE = env_flag(os.environ.get("LANELAB_CONFIRM_LIVE"))  # headless live runs only; in Lab press the button
CONCURRENCY = 4
RUN_ID = None  # None: derived from profile, design, mode and policy, so running again resumes

# %% [markdown]
# ## 1 · The cells and what they cost
#
# One cell per variant. For one-factor-at-a-time the first cell is the baseline (every factor as the profile sends
# it); each other cell changes exactly one thing. The cost is the inference requests and their worst-case tokens
# (input estimate plus `max_tokens`). Nothing has been sent yet.

# %%
from lanelab.matrix.plan import MatrixPlan

plan = MatrixPlan.build(PROFILE, DESIGN, FACTORS, settings, levels=LEVELS)
plan.describe()

# %% [markdown]
# ### The same choice, with pickers
#
# The pickers below start from the parameters above and are another way to drive this notebook: choose a profile
# (one of data/profiles, a capture that `python -m lanelab capture` or `watch` wrote under `LANELAB_OUT/captures`,
# or the path of a capture or profile file), a design, the factors to vary and a budget, and the cell count and the
# cost follow every choice. A choice that cannot be sent says why instead of failing. **Send** sends the chosen
# cells (in live mode only after you confirm the notice, host, credential and cost that appear above it), with a
# progress bar and a first look at the results below it.
#
# Nothing here is needed for a headless run: the cells after this one keep running from the parameters, so
# "Run All" and headless runs (`make demo`, the tests) never wait for a click. To read a run sent from the
# pickers in sections 3 to 6, run `result = picker.result` in a new cell, then the cells from section 3 on.

# %%
from lanelab.matrix.picker import MatrixPicker
from lanelab.matrix.widget import MatrixWidget

picker = MatrixPicker(PROFILE, DESIGN, FACTORS, settings, levels=LEVELS, budget=BUDGET, credential=CREDENTIAL,
                      confirmed=CONFIRM_LIVE, concurrency=CONCURRENCY, usage_snapshots=True)
MatrixWidget(picker)

# %% [markdown]
# ### Before sending: confirm (live mode)
#
# In live mode this shows the responsible-use notice, the host, the credential (masked) and the plan's cost, and
# nothing is sent until you press the button (or, for a headless run, set `CONFIRM_LIVE = True`). A plan over the
# budget is refused here, with its cost and a cheaper plan to run instead. The simulator spends nothing, so sim mode
# needs no confirmation.

# %%
from lanelab.matrix.confirm import ConfirmWidget

gate = plan.gate(CREDENTIAL, BUDGET, confirmed=CONFIRM_LIVE)
ConfirmWidget(gate)

# %% [markdown]
# ## 2 · Send them
#
# Bounded concurrency, retries only for transient failures (429 rate limits, 529, 5xx, network errors; honouring
# `retry-after`), never for verdicts such as the extra-usage 400. Every response is appended to
# `LANELAB_OUT/runs/<run_id>.jsonl` as it arrives, redacted, so re-running this cell sends only what is missing.
# The credential is the one notebook 01 saved; in sim mode without one, a fresh token is minted from the simulator.
# In live mode this cell sends only once the step above is confirmed.

# %%
result = plan.run(credential=CREDENTIAL, budget=BUDGET, gate=gate, run_id=RUN_ID, concurrency=CONCURRENCY,
                  usage_snapshots=True)
print(result.credential_note or f"credential {CREDENTIAL!r}: nothing needed sending")
print(result)

# %% [markdown]
# ## 3 · The results, redacted
#
# One row per cell: what it changed from the request as the client sends it ("as sent" is the unchanged request),
# the HTTP status, the outcome in words (data/outcomes.toml), the billing lane read from the
# `anthropic-ratelimit-unified-*` headers, and the server's message verbatim. A message the kit has never seen is
# shown as unclassified, never hidden. `cell_results(df, wide=True)` gives every factor as a column instead.

# %%
from lanelab.findings.frame import cell_results
from lanelab.runs import load_run

run = load_run(result.path)
df = run.to_frame()  # the one tidy table: one row per cell, one column per factor
cell_results(df)

# %% [markdown]
# ## 4 · Outcome by factor
#
# How many cells ended in each outcome, for every level of every factor (every row shown: the one level that moves
# the request may sit anywhere in the table).

# %%
import pandas as pd
from IPython.display import display
from lanelab.findings.frame import outcome_by_factor, outcome_label

with pd.option_context("display.max_rows", None):
    display(outcome_by_factor(df).rename(columns=outcome_label))

# %% [markdown]
# ## 5 · The answer: what moves this request between lanes
#
# Computed from the cells above, never written by hand: the request as sent, the single changes that get it billed
# to the plan, and among those the smallest edit on the wire, with the element before and after, the evidence and the
# remedy. Notebook 03 goes further (the three questions, the plan's headroom, a cell explorer, the shareable report).

# %%
from lanelab.findings import report

first_look = report.collect(run)
first_look.verdict

# %% [markdown]
# ## 6 · Each change on its own
#
# For a one-factor-at-a-time run, every single change and how it ended, ranked: billed to the plan first, then the
# changes that end differently, then those that end like the request as sent. Designs that fill a grid (full,
# pairwise) get the results matrix as a heatmap instead.

# %%
from IPython.display import Markdown

first_look.figure(first_look.overview) if first_look.overview else Markdown("*This run holds no cells yet.*")
