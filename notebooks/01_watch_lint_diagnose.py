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
# # 01 (then) · Diagnose your client: watch, lint, diagnose
#
# You have a credential (notebook 01). Before a full matrix, three cheap steps answer the question most people have:
# *what in my client's request sends it to extra usage, and what can I do?*
#
# 1. **Watch** (free): a proxy in front of your own client prints, for every request it sends, the outcome, the
#    billing lane, the representative claim and how full the plan is. With `PLAN_ONLY` it stops forwarding after the
#    first request that went to extra usage, so nothing is spent silently.
# 2. **Lint** (free): the request is matched against the catalogue of reported triggers (data/triggers.toml); nothing
#    is sent.
# 3. **Diagnose** (a handful of requests): the request as sent, then lint's fixes, then, if needed, a search at fine
#    grain (each tool, header, beta token, system sentence) against a request built from the client's own elements.
#    It ends with the verdict in a sentence, the remedies, and what was spent.
#
# Everything runs against the embedded simulator by default (a model built from public reports). Live mode needs the
# opt-in and a budget. The kit diagnoses; it never makes a request look like Claude Code.

# %% tags=["parameters"]
import contextlib
import os

from lanelab.auth.issuer import default_label
from lanelab.config import Settings
from lanelab.live import env_flag

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
PROFILE = "hermes-0.14.0"  # the client request to diagnose (data/profiles/); or set CAPTURE to a watch file
CAPTURE = None  # None: the profile; a path: the last request of a capture (e.g. this notebook's watch file)
POLICY = "2026-05-25"  # the simulator's policy when no LANELAB_BASE_URL is set
CREDENTIAL = default_label(settings.mode)  # sim-pkce or live-pkce: what notebook 01 saves (the CLI's default too)
PLAN_ONLY = True  # the watch stops forwarding after the first request that went to extra usage
SEND_EXAMPLE_TRAFFIC = settings.mode == "sim"  # sim: send two requests through the watch; live: your client does
# live: the most requests diagnose may send; it refuses unless this covers the worst case the confirmation shows
# (80 covers the default profile's; it stops as soon as the cause is found, usually after a handful)
BUDGET = None if settings.mode == "sim" else 80
CONFIRM_LIVE = env_flag(os.environ.get("LANELAB_CONFIRM_LIVE"))  # headless live runs only; in Lab press the button

# %% [markdown]
# ## 1 · Watch what a client sends
# The proxy forwards every request unchanged and records it (redacted) in a capture file. Point your client's base URL
# at the address below (`ANTHROPIC_BASE_URL` for the official SDKs and Claude Code; Hermes, Pi and OpenClaw: see
# `python -m lanelab watch --help`, which also runs a client for you). The table fills as requests arrive.

# %%
from lanelab.matrix.tokens import TokenSource
from lanelab.sim.server import running_simulator
from lanelab.walkthrough.watch import running_watch

stack = contextlib.ExitStack()
upstream = settings.base_url or stack.enter_context(running_simulator(policy=POLICY)).base_url
watch = stack.enter_context(running_watch(upstream, settings=settings, plan_only=PLAN_ONLY))
print("point your client at:", watch.base_url)
watch.live_table()

# %% [markdown]
# In sim mode, two requests go through the watch here: the official `anthropic` SDK's smallest OAuth request, then
# the profile's request replayed as its client sent it.

# %%
if SEND_EXAMPLE_TRAFFIC:
    import anthropic
    import lanelab.http
    from lanelab.matrix.profiles import load_profile
    from lanelab.wire.send import send

    token = TokenSource(settings, upstream, CREDENTIAL).token()
    sdk = anthropic.Anthropic(auth_token=token, base_url=watch.base_url, max_retries=0,
                              default_headers={"anthropic-beta": "oauth-2025-04-20"},
                              http_client=lanelab.http.sdk_client(watch.base_url))
    sdk.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=1,
                                          messages=[{"role": "user", "content": "ping"}])
    send(load_profile(PROFILE).spec, watch.base_url, token)
    watch.wait_for(2)
watch.to_frame()

# %%
watch.tally()

# %% [markdown]
# ## 2 · Lint: known triggers, no request
# The request the client sent (the last one the watch saw, or the profile) against the catalogue of reported
# triggers. Each match names the exact elements, the fix reports say works, its sources and their confidence.

# %%
from lanelab.walkthrough.lint import lint_file

capture_file = watch.proxy.out_path
source = CAPTURE or (capture_file if SEND_EXAMPLE_TRAFFIC else PROFILE)
stack.close()  # the watch stops; its capture file stays
lint_result = lint_file(source)
lint_result

# %% [markdown]
# ## 3 · Diagnose: the verdict in a sentence
# A handful of requests, each stored as a cell of a run (design `diagnose`); the findings report opens with this
# verdict. In live mode it refuses before the confirmation when the worst case exceeds `BUDGET`.

# %% [markdown]
# ### Before sending: confirm (live mode)
# The notice, the host, the credential (masked) and the worst case of the diagnosis. Nothing is sent until you press
# the button (or set `CONFIRM_LIVE = True` for a headless run). Sim mode needs no confirmation.

# %%
from lanelab.matrix.confirm import ConfirmWidget
from lanelab.walkthrough.diagnose import live_gate, run_diagnose

source_args = {"capture": CAPTURE} if CAPTURE else {"profile": PROFILE}
gate = live_gate(**source_args, credential=CREDENTIAL, budget=BUDGET, settings=settings, confirmed=CONFIRM_LIVE)
ConfirmWidget(gate)

# %%
gate.require()  # live mode: nothing is sent before the confirmation above
diagnosis = run_diagnose(**source_args, credentials=[CREDENTIAL], live=settings.mode == "live", budget=BUDGET,
                         policy=POLICY, settings=settings, confirmed=gate.confirmed)
diagnosis.verdict

# %%
diagnosis

# %% [markdown]
# The report (redacted, to paste into an issue) and the run are under `LANELAB_OUT`. When the question is broader
# than one request (which factors matter across clients, what the lanes look like over many variants), go on with the
# full matrix in notebook 02.

# %%
print("report:", diagnosis.report_path)
print("run:", diagnosis.run_path)
