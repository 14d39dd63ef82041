"""The whole test session runs with HOME in a sandbox that holds test copies of other clients' credential files.

Nothing the tests do can reach the real ~/.claude or ~/.hermes, and at the end of the session the copies must be
byte-for-byte and mode-for-mode what they were (issue 7: the kit never writes another client's files).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

FAKE = "sk-ant-oat01-FAKEsessionHOMEcopy0000000000000000000000000000"


def create() -> Path:
    home = Path(tempfile.mkdtemp(prefix="lanelab-test-home-"))
    expires = int(time.time() * 1000) + 86_400_000
    files = {
        ".claude/.credentials.json": {"claudeAiOauth": {"accessToken": FAKE, "refreshToken": FAKE.replace("oat", "ort"),
                                                        "expiresAt": expires, "scopes": ["user:inference"]}},
        ".hermes/auth.json": {"version": 1, "credential_pool": {"anthropic": [
            {"id": "s1", "auth_type": "oauth", "source": "claude_code", "access_token": FAKE,
             "refresh_token": FAKE.replace("oat", "ort"), "expires_at_ms": expires}]}},
    }
    for rel, data in files.items():
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        path.chmod(0o600)
    return home


def fingerprint(home: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(home)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted([*home.glob(".claude/*"), *home.glob(".hermes/*")]) if p.is_file()}


def activate(home: Path) -> dict[str, str | None]:
    """Point HOME (and what derives from it) at the sandbox; returns what to restore."""
    import matplotlib

    saved = {k: os.environ.get(k) for k in ("HOME", "MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    os.environ["MPLCONFIGDIR"] = saved["MPLCONFIGDIR"] or matplotlib.get_configdir()  # keep the font cache
    os.environ["HOME"] = str(home)
    os.environ.pop("XDG_CONFIG_HOME", None)
    return saved


def deactivate(home: Path, saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(home, ignore_errors=True)
