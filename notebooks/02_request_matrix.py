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
# public threads conflict (research/hermes.md §1), so this notebook answers with data: it takes the request exactly as
# a named client sends it (a *profile*), varies it along chosen *factors*, sends every variant (a *cell*) and reads
# what each response says about its billing lane.
#
# The default is the seed report: Hermes 0.14.0, one factor at a time, against the embedded simulator (a model built
# from public reports; live observations always outrank it). In live mode every cell spends a little of your own plan:
# `max_tokens` is 1, nothing streams unless a factor asks for it, and a budget caps the requests. The kit diagnoses;
# it never disguises a request as Claude Code.

# %% tags=["parameters"]
from lanelab.config import Settings

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
PROFILE = "hermes-0.14.0"  # a client shape from data/profiles/
DESIGN = "ofat"  # ofat (one factor at a time), full, pairwise
FACTORS = None  # None: every factor in data/factors.toml except credential; or e.g. ["tools", "user_agent"]
CREDENTIAL = "sim-pkce" if settings.mode == "sim" else "live-pkce"  # the label notebook 01 saved
BUDGET = None if settings.mode == "sim" else 10  # live: at most this many inference requests, retries included
CONCURRENCY = 4
RUN_ID = None  # None: derived from profile, design, mode and policy, so running again resumes

# %% [markdown]
# ## 1 · The cells and what they cost
#
# One cell per variant. For one-factor-at-a-time the first cell is the baseline (every factor as the profile sends
# it); each other cell changes exactly one thing. Nothing has been sent yet.

# %%
from lanelab.matrix.plan import MatrixPlan

plan = MatrixPlan.build(PROFILE, DESIGN, FACTORS, settings)
plan.describe()

# %% [markdown]
# ## 2 · Send them
#
# Bounded concurrency, retries only for transient failures (429 rate limits, 529, 5xx, network errors; honouring
# `retry-after`), never for verdicts such as the extra-usage 400. Every response is appended to
# `LANELAB_OUT/runs/<run_id>.jsonl` as it arrives, redacted, so re-running this cell sends only what is missing.
# The credential is the one notebook 01 saved; in sim mode without one, a fresh token is minted from the simulator.

# %%
result = plan.run(credential=CREDENTIAL, budget=BUDGET, run_id=RUN_ID, concurrency=CONCURRENCY,
                  usage_snapshots=True)
print(result.credential_note or f"credential {CREDENTIAL!r}: nothing needed sending")
print(result)

# %% [markdown]
# ## 3 · The results, redacted
#
# One row per cell: what was changed, the status, the outcome class (data/outcomes.toml), the billing lane read from
# the `anthropic-ratelimit-unified-*` headers, and the server's message verbatim. A message the kit has never seen is
# `unclassified`, never hidden.

# %%
import pandas as pd

from lanelab.runs import load_run, records

run = load_run(result.path)
table = pd.DataFrame(records(run))
table[["cell_id", *plan.factors, "status", "outcome", "lane", "error_message", "request_id"]]

# %% [markdown]
# ## 4 · Outcome by factor
#
# How many cells landed in each outcome class, for every level of every factor.

# %%
table.melt(id_vars=["outcome"], value_vars=plan.factors, var_name="factor", value_name="level") \
    .pivot_table(index=["factor", "level"], columns="outcome", aggfunc="size", fill_value=0)

# %% [markdown]
# ## 5 · The single changes that flip the verdict
#
# Every cell that differs from the baseline in exactly one factor, and lands somewhere else than the baseline did.
# The ones that turn the baseline's refusal into a 200 billed to the plan are the answer to "what does this client
# do differently?"; compare them with a maintainer in notebook 04.

# %%
from lanelab.runs import single_changes

changes = pd.DataFrame(single_changes(run, plan.baseline_cell_id))
flips = changes[changes["outcome"] != changes["baseline_outcome"]]
flips

# %%
from IPython.display import Markdown

baseline = run.cells[plan.baseline_cell_id]
to_plan = flips[flips["outcome"] == "served_plan"]
Markdown(f"Baseline ({PROFILE} as sent): **{baseline['outcome']}** (HTTP {baseline['observation']['status']}). "
         f"Single changes that turn it into a plan-billed 200 under policy `{run.header.get('policy')}`: "
         + (", ".join(f"`{f}={lv}`" for f, lv in zip(to_plan["factor"], to_plan["level"])) or "**none**") + ".")

# %% [markdown]
# ## 6 · The matrix at a glance
#
# Outcome by the two factors that flip the verdict most often (the findings notebook 03 goes further: answers,
# lane signals and the shareable report).

# %%
from IPython.display import Image

from lanelab.findings import frame as analysis, report

first_look = report.collect(analysis.load(result.path))
Image(first_look.png("heatmap"))
