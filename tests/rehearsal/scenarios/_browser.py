"""The rehearsal's stand-in for a person's browser (a test tool, not a scenario): open the authorize link, follow the
redirects to the callback page, and read the value the page shows for pasting (``code#state``).

It trusts the test CA (``REHEARSAL_CA``) the way a person's browser trusts Anthropic's real certificates; the kit
itself gets that CA only through ``LANELAB_CA_BUNDLE``. Scenarios import it (their folder is on ``sys.path``), and
notebook 01's rehearsal imports it in the kernel, where the person would type into the paste box.
"""

from __future__ import annotations

import html
import os
import re
from typing import Any

import httpx


def open_link(url: str) -> dict[str, Any]:
    """Open ``url`` as a browser would; returns ``{"pages": [...], "value": code#state or None, "error": …}``."""
    pages: list[str] = []
    try:
        with httpx.Client(trust_env=False, verify=os.environ["REHEARSAL_CA"], follow_redirects=True,
                          timeout=10) as browser:
            response = browser.get(url)
        pages = [f"{r.status_code} {r.url}" for r in (*response.history, response)]
        match = re.search(r'id="paste-value"[^>]*>([^<]+)<', response.text)
        value = html.unescape(match.group(1)).strip() if match else None
        text = None if value else re.sub(r"<[^>]+>", " ", response.text)[:500]
        return {"pages": pages, "value": value, "page_text": text}
    except httpx.HTTPError as exc:
        return {"pages": pages, "value": None, "error": f"{type(exc).__name__}: {exc}"}


def paste_value(url: str) -> str:
    """The value a person copies from the callback page after opening ``url``; raises when no page shows one."""
    seen = open_link(url)
    if not seen["value"]:
        raise RuntimeError(f"the callback page showed no value to paste: {seen}")
    return seen["value"]
