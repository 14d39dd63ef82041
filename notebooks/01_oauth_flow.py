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
# # 01 · The OAuth flow, one step at a time
#
# Third-party agents (Hermes, OpenCode, Pi…) sign in to Claude Pro/Max with the same OAuth flow Claude Code uses:
# an authorization code with PKCE, pasted by hand as `code#state`, exchanged for an access token and a refresh token.
# This notebook walks through that flow visibly, so you can see what your credential is and what your account says
# about it before any request is sent. Secrets are masked everywhere: nothing below shows a token, a code or a verifier.
#
# By default it runs against the embedded simulator (`LANELAB_MODE=sim`). In live mode (`LANELAB_MODE=live`,
# `LANELAB_LIVE_OPT_IN=1`) it logs in to your real account; logging in spends nothing. The kit diagnoses: it never
# disguises a request as Claude Code.

# %% tags=["parameters"]
import os

from lanelab.auth.issuer import default_label
from lanelab.config import Settings

settings = Settings.from_env()  # LANELAB_MODE, LANELAB_BASE_URL, LANELAB_HOME, LANELAB_OUT
ENDPOINTS = os.environ.get("LANELAB_ENDPOINTS", "")  # "" = the first endpoint set for this mode (data/oauth.toml)
VARIANT = os.environ.get("LANELAB_TOKEN_VARIANT", "axios-json")  # token POST shape: axios-json, axios-form, …
LABEL = default_label(settings.mode)  # sim-pkce in sim mode, live-pkce in live mode (the CLI's defaults too)
PASTE = os.environ.get("LANELAB_PASTE", "")  # for unattended live runs only; never faked
# headless sim runs read the value from the simulator's callback page; LANELAB_INTERACTIVE=1 waits for a person
AUTO_PASTE = settings.mode == "sim" and not os.environ.get("LANELAB_INTERACTIVE")
IMPORT_LABEL = os.environ.get("LANELAB_IMPORT", "")  # second path: a credential to import instead (see the end)

# %%
from IPython.display import Markdown
from lanelab.live import NOTICE, require_live_opt_in

require_live_opt_in(settings, "Logging in to your real account needs the live opt-in")
Markdown(f"**Live mode.** {NOTICE} Logging in spends nothing; notebooks 02 and 04 ask before they send."
         if settings.mode == "live" else "*Sim mode: everything below runs against the embedded simulator.*")

# %% [markdown]
# ## 1 · Choose the endpoint set
#
# Hosts, scopes and the redirect URI are data (`data/oauth.toml`), each with the public report it comes from. The
# live sets differ in authorize host (`claude.ai` or `claude.com/cai`), token host (`platform.claude.com` or the older
# console host) and scope set (Hermes' three scopes or Claude Code's full set).

# %%
from IPython.display import Markdown
from lanelab.auth.flow import LoginFlow

flow = LoginFlow(settings, variant=VARIANT, label=LABEL)
endpoints = flow.choose(ENDPOINTS or None)
Markdown(f"Chosen: **{endpoints.name}** (available in this mode: {', '.join(flow.endpoint_choices)}). "
         f"Source: {endpoints.source}")

# %% [markdown]
# ## 2 · PKCE and the authorize link
#
# A fresh verifier (32 random bytes, base64url) stays here; only its SHA-256 challenge goes into the link, with a
# separate random `state` that must come back unchanged.

# %%
from IPython.display import Markdown, display

url = flow.start()
display(Markdown(f"[Open the authorize page]({url}) — then copy the value the callback page shows."))
flow.authorization.pkce

# %% [markdown]
# ## 3 · Paste the code
#
# Paste `code#state` (or the whole callback URL) into the box and press **Exchange**. A wrong paste is refused
# beside the box with what to do next. In a headless simulator run the value is read from the simulator's callback
# page and submitted through the same widget.

# %%
from lanelab.auth.widget import LoginWidget

ui = LoginWidget(flow)
value = flow.headless_paste(PASTE, auto=AUTO_PASTE)  # None in live mode: use the box
if value:
    ui.paste.value = value
    ui.submit_button.click()
ui

# %% [markdown]
# ## 4 · The credential, masked
#
# Kind, expiry, scopes and what each scope allows. The token endpoint's JSON-vs-form body and user agent are the
# variant chosen above.

# %%
flow.summary() or Markdown("*Waiting for a paste in step 3; run the cells below again afterwards.*")

# %% [markdown]
# ## 5 · What the account says: profile and usage
#
# Two free GETs (`/api/oauth/profile`, `/api/oauth/usage`, with the OAuth beta): plan, rate-limit tier, whether
# extra usage is enabled and how much is used, and each usage window. A plan that shows almost no use while
# requests fail with "You're out of extra usage" is the symptom this kit investigates.

# %%
(flow.account or flow.inspect()) if flow.credential else Markdown("*No credential yet.*")

# %% [markdown]
# ## 6 · Save under a label
#
# The kit's own store (`LANELAB_HOME`): one file per label, mode 0600, written atomically. Notebook 02 uses it.
# The file records who issued the credential (the simulator at its address, or Anthropic's token host), and the kit
# sends it only there: a simulator credential never reaches the live API, and a live one never the simulator.

# %%
(flow.save(), flow)[1] if flow.credential else Markdown("*Nothing to save yet.*")

# %% [markdown]
# ## Another path: import the credential you already have
#
# Claude Code (`~/.claude/.credentials.json`), Hermes (`~/.hermes/auth.json`, `~/.hermes/.anthropic_oauth.json`) and
# the variables `CLAUDE_CODE_OAUTH_TOKEN` / `ANTHROPIC_TOKEN` are read, never written. The kit never refreshes an
# imported credential on its own: refresh tokens are single-use, so that would log the other client out. Imported
# credentials count as live: the kit sends them only to Anthropic's API. Files it cannot read are listed below the
# table.

# %%
from lanelab.auth.introspect import credentials_table

credentials_table(settings)

# %%
from lanelab.auth.introspect import describe
from lanelab.auth.resolve import resolve_credential

describe(resolve_credential(IMPORT_LABEL, settings)) if IMPORT_LABEL else Markdown(
    "*Set `LANELAB_IMPORT` to one of the labels above to inspect it here.*")
