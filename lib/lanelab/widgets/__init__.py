"""ipywidgets front ends. Their state lives in plain objects (e.g. :class:`lanelab.login_flow.LoginFlow`), so every
behaviour can be tested without a browser; the widgets only forward clicks and render."""

from __future__ import annotations

from .login import LoginWidget

__all__ = ["LoginWidget"]
