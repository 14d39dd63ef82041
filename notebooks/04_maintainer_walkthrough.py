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
# # 04 · Maintainer walkthrough: what does my client send, and what is the smallest change that flips it?
#
# Maintainers have argued from debug dumps that did not show what went on the wire: Hermes' dump said
# `POST /chat/completions` with `Bearer None`, while the real call went to `/v1/messages` with the token
# ([references/hermes.md F1](../docs/references/hermes.md); hermes-agent #32318 vs #91319). This notebook replaces the
# dump with evidence:
#
# 1. put a recording proxy in front of the server and send through it the official `anthropic` SDK's request and a
#    replay of the `hermes-0.14.0` profile;
# 2. read the wire path and headers from the capture;
# 3. diff Hermes' request against the SDK's (billed to the plan), with what public reports say about each
#    difference; then build the reference to bisect against from Hermes' own request: lint's fixes applied, nothing
#    added (the reference `lanelab diagnose` tries first);
# 4. bisect: apply subsets of those fixes and find the smallest set that flips the verdict, spending few requests,
#    so the answer names the element to change (the tool names, a sentence) rather than "remove all tools".
#
# By default everything runs against the embedded simulator (a model built from public reports). Live mode needs the
# opt-in and a confirmation; each request then spends a little of your own plan (`max_tokens` 1, no streaming).

# %% tags=["parameters"]
import contextlib
import os
from pathlib import Path

from lanelab.auth.issuer import default_label
from lanelab.config import Settings
from lanelab.live import env_flag
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
FAILING = "hermes-0.14.0"  # the client shape to examine (data/profiles/)
PASSING = "sdk-minimal"  # the profile of the SDK's request (sent once through the proxy; its cost is shown first)
CREDENTIAL = default_label(settings.mode)  # sim-pkce or live-pkce: what notebook 01 saves (the CLI's default too)
BUDGET = None if settings.mode == "sim" else DEFAULT_LIVE_BUDGET  # live: inference requests in all (captures too)
CONFIRM_LIVE = env_flag(os.environ.get("LANELAB_CONFIRM_LIVE"))  # headless live runs only; in Lab press the button
CAPTURE_REQUESTS = 2  # the SDK's request and the replay of the failing profile, both sent through the proxy
CAPTURE_FILE = Path(settings.out) / "captures" / "04_walkthrough.jsonl"

# %% [markdown]
# ## 1 · The server and a credential
# In sim mode without `LANELAB_BASE_URL`, an embedded simulator starts for this notebook. The token is the one
# notebook 01 saved (sent only to the service that issued it), or in sim mode a fresh simulator token; it is
# registered as a secret, so it is masked in every output. In live mode both requests are the cheapest of their
# shape (`max_tokens` 1, no streaming).

# %%
from lanelab.matrix.profiles import ensure_sendable, minimal_spend
from lanelab.matrix.tokens import TokenSource
from lanelab.sim.server import running_simulator

stack = contextlib.ExitStack()
upstream = settings.base_url or stack.enter_context(running_simulator()).base_url
source = TokenSource(settings, upstream, CREDENTIAL)
token = source.token()
cheapest = minimal_spend if settings.mode == "live" else (lambda spec: spec)
failing_profile_spec = cheapest(ensure_sendable(FAILING).spec)  # a first-party reference profile is never sent
passing_profile_spec = cheapest(ensure_sendable(PASSING).spec)
print("server:", upstream, "| credential:", source.where)

# %% [markdown]
# ### Before sending: confirm (live mode)
# The notice, the host, the credential (masked) and the cost of everything below: the two captured requests and at
# most `BUDGET - CAPTURE_REQUESTS` bisect probes. Nothing is sent until you press the button (or set
# `CONFIRM_LIVE = True` for a headless run). Sim mode needs no confirmation.

# %%
from lanelab.matrix.confirm import ConfirmWidget, gate_for
from lanelab.walkthrough.bisect import reference_for

probe_budget = None if BUDGET is None else BUDGET - CAPTURE_REQUESTS  # the captures are paid from the same budget
planned = reference_for(failing_profile_spec)  # what the probes mix with the failing request (step 3)
gate = gate_for(settings, upstream, CREDENTIAL, token, once=[passing_profile_spec, failing_profile_spec],
                mixed=(failing_profile_spec, planned.spec), probes=probe_budget or 0, budget=BUDGET,
                confirmed=CONFIRM_LIVE, extra=[f"{CAPTURE_REQUESTS} captured requests, then at most {probe_budget} "
                                               f"bisect probes ({FAILING} against {planned.description})"])
ConfirmWidget(gate)

# %% [markdown]
# ## 2 · Capture what the clients really send
# The proxy listens on loopback and forwards each request byte for byte; every exchange lands, redacted, in a JSON
# Lines file. First the official SDK, as any user would call it with an OAuth token and the oauth beta (its HTTP
# client comes from the kit's factory, which keeps every request on the allow-list).

# %%
import anthropic
import lanelab.http
from lanelab.walkthrough.capture import running_capture

gate.require()  # live mode: nothing is sent before the confirmation above
CAPTURE_FILE.unlink(missing_ok=True)
proxy = stack.enter_context(running_capture(upstream, CAPTURE_FILE, settings=settings))
sdk = stack.enter_context(anthropic.Anthropic(auth_token=token, base_url=proxy.base_url, max_retries=0,
                                              default_headers={"anthropic-beta": "oauth-2025-04-20"},
                                              http_client=lanelab.http.sdk_client(proxy.base_url)))
sdk_reply = sdk.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=1,
                                                  messages=[{"role": "user", "content": "ping"}])
print("SDK request answered with HTTP", sdk_reply.status_code)

# %% [markdown]
# Then Hermes 0.14.0 as it sent its request at the time of the seed report (#32243), replayed from its profile.

# %%
from lanelab.wire.send import send

hermes_obs = send(failing_profile_spec, proxy.base_url, token)
hermes_obs

# %% [markdown]
# What went on the wire. Both requests went to **`/v1/messages`**, not `/chat/completions`: the path in the old debug
# dumps was an artifact of the dump code, not of the request.

# %%
proxy.to_frame()

# %% [markdown]
# ## 3 · Diff against the SDK's request, then a reference built from Hermes' own
# One row per difference between Hermes' request and the SDK's (both as captured): headers, query, each system
# block, tools and their names, other body fields. The last columns say what public reports claim about that kind
# of difference, with their sources. The diff also says whether either request carries a billing attestation block
# (the kit reports one; it never makes one).

# %%
from lanelab.matrix.from_capture import spec_from_exchange
from lanelab.wire.diff import diff_specs
from lanelab.wire.exchanges import inference_exchange

sdk_spec, _ = spec_from_exchange(inference_exchange(proxy.exchanges(), 0))  # the SDK's request, as captured
failing_spec, _ = spec_from_exchange(inference_exchange(proxy.exchanges()))  # Hermes' request, as captured
diff_specs(failing_spec, sdk_spec, FAILING, "anthropic SDK")

# %% [markdown]
# That table says what differs, not what matters, and bisecting against the SDK's request could only answer
# "remove all tools". So the reference for the bisect is built from Hermes' own request, the way `lanelab diagnose`
# builds its first one: lint's fixes applied (each a trigger from `data/triggers.toml` with its public source), nothing
# added that Hermes does not send. The rows below are exactly the edits the bisect works with: each tool name, each
# system sentence.

# %%
from IPython.display import Markdown, display

reference = reference_for(failing_spec)
display(Markdown(f"Reference **{reference.name}**: {reference.description}; {len(reference.items)} fix(es) to "
                 "try, each applied as a whole."))
diff_specs(failing_spec, reference.spec, FAILING, reference.name, grain="fine")

# %% [markdown]
# ## 4 · Bisect to the smallest fix that flips the verdict
# Each probe applies a subset of the fixes to Hermes' request and sends it; a binary search narrows to a set where
# leaving out any one fix no longer gets the request billed to the plan. The answer names the element and its fix,
# in the same words `lanelab diagnose` uses. Every probe is stored as a cell of a run, like the matrix; running this
# cell again reads the stored probes back and sends none of them twice.

# %%
from lanelab.walkthrough.bisect import NO_FLIP, bisect_to_run

result = bisect_to_run(failing_spec, reference.spec, upstream, token, settings=settings, failing_label=FAILING,
                       passing_label=f"{FAILING}-{reference.name}", credential=CREDENTIAL,
                       run_id="04_walkthrough_bisect", items=list(reference.items), budget=probe_budget,
                       confirmed=gate.confirmed)
if result.status == NO_FLIP:
    display(Markdown(f"*Lint's fixes together do not get {FAILING}'s request billed to the plan here: "
                     f"`python -m lanelab diagnose --profile {FAILING}` goes on at fine grain.*"))
for note in result.notes:
    display(Markdown(f"*{note}*"))
result

# %%
result.probe_frame()

# %% [markdown]
# ## 5 · Conclusion
# The answer below is generated from the runs (notebook 02's matrix, or a diagnose run when there is one), exactly as
# the report opens with it, never written by hand; the bisect above narrows the same question down on the wire. A
# simulator result is a model's answer: run this notebook in live mode (opted in, budgeted) before drawing a
# conclusion about the real service. The kit does not make a third-party request pass as Claude Code, and never
# generates a billing attestation block.

# %%
from lanelab.findings.verdict import verdict_of_runs
from lanelab.runs import load_runs, run_paths

verdict_of_runs(load_runs(run_paths(settings)))

# %%
stack.close()
print("capture:", CAPTURE_FILE, "| probes:", result.path)
