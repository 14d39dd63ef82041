"""Where the kit reads its settings: environment variables, with sensible per-user defaults.

Notebooks, the CLI and the tests all configure the kit the same way, so a notebook executed by the test harness
and one opened by a person in JupyterLab behave alike.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lanelab.errors import ConfigError

#: The real API host; the only non-loopback host a credential may ever be sent to.
LIVE_API_BASE = "https://api.anthropic.com"
LIVE_HOSTS = frozenset({"api.anthropic.com", "claude.ai", "claude.com", "platform.claude.com", "console.anthropic.com"})

MODES = ("sim", "live")
#: The simulator snapshot used when none is named: the one the seed report (#32243, 2026-05-25) was filed under.
DEFAULT_POLICY = "2026-05-25"


@functools.lru_cache(maxsize=1)
def repo_root() -> Path:
    """The checkout this package lives in (lib/lanelab/ -> ../..); resolved once per process (it cannot move)."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The kit's data files (profiles, policies, taxonomies). ``LANELAB_DATA`` overrides, for tests."""
    return _data_dir(os.environ.get("LANELAB_DATA") or "")


@functools.lru_cache(maxsize=8)
def _data_dir(env: str) -> Path:
    return Path(env) if env else repo_root() / "data"


def data_file(name: str) -> Path:
    """``data_dir() / name``, remembered per value of ``LANELAB_DATA`` (the wire layer asks for its tables once or
    twice per response)."""
    return _data_file(os.environ.get("LANELAB_DATA") or "", name)


@functools.lru_cache(maxsize=64)
def _data_file(env: str, name: str) -> Path:
    return _data_dir(env) / name


def default_home() -> Path:
    """The kit's own credential store: ``$XDG_CONFIG_HOME/lanelab`` or ``~/.config/lanelab``."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "lanelab"


@functools.lru_cache(maxsize=256)
def is_loopback(host: str | None) -> bool:
    """The one loopback check: ``localhost`` or a loopback IP literal (127.0.0.0/8, ``::1``, ``[::1]``).

    A name that merely starts with ``127.`` (``127.0.0.1.example.com``, ``127.0.0.1.nip.io``) is not loopback.
    """
    host = (host or "").strip().lower().removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when ``url`` is an http(s) URL whose host is loopback (see :func:`is_loopback`)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and is_loopback(parts.hostname)


def host_allowed(url: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """True when ``url`` points at loopback or a known Anthropic host (never elsewhere: tokens go nowhere else)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if is_loopback(host):
        return parts.scheme in ("http", "https")
    return parts.scheme == "https" and (host in LIVE_HOSTS or host in extra_hosts)


def host_refusal(url: str) -> str:
    """Why :func:`host_allowed` refuses ``url``, as the end of a sentence about it ("is neither loopback nor an
    Anthropic host")."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() in LIVE_HOSTS and parts.scheme != "https":
        return f"names an Anthropic host over {parts.scheme or 'no scheme'}: a credential goes to it over https only"
    return "is neither loopback nor an Anthropic host"


def _check_url_form(url: str, userinfo: bool) -> None:
    """Refuse a LANELAB_BASE_URL that does not parse (a port that is not a number from 0 to 65535, a broken IPv6
    literal) or, with ``userinfo``, one that carries a user name or password (it would be echoed in messages)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ConfigError(f"LANELAB_BASE_URL is not a valid URL ({exc}); check for a typo.") from None
    if userinfo and (parts.username is not None or parts.password is not None):
        raise ConfigError("LANELAB_BASE_URL must not hold a user name or password (user:password@host); remove it.")


@dataclass(frozen=True)
class Settings:
    """The kit's configuration for one process."""

    mode: str = "sim"
    base_url: str | None = None
    home: Path = field(default_factory=default_home)
    out: Path = field(default_factory=lambda: repo_root() / "reports")
    live_opt_in: bool = False
    #: A CA bundle (PEM) to trust for https instead of the system store: ``LANELAB_CA_BUNDLE``. For a corporate TLS
    #: proxy, or for the offline rehearsal where a test CA stands in for Anthropic's certificates.
    ca_bundle: Path | None = None
    #: An explicit proxy for requests to Anthropic's hosts (``LANELAB_PROXY``); environment proxy variables are
    #: ignored. Never used for loopback.
    proxy: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        mode = env.get("LANELAB_MODE", "sim").strip().lower() or "sim"
        if mode not in MODES:
            raise ConfigError(f"LANELAB_MODE must be one of {', '.join(MODES)}, not {mode!r}.")
        base_url = env.get("LANELAB_BASE_URL") or None
        if mode == "live" and base_url is None:
            base_url = LIVE_API_BASE
        if base_url is not None:
            base_url = base_url.rstrip("/")
            _check_url_form(base_url, userinfo=False)
            if not host_allowed(base_url):
                raise ConfigError(
                    f"LANELAB_BASE_URL={base_url!r} {host_refusal(base_url)}; "
                    "the kit refuses to send a credential there. Check for a typo."
                )
            _check_url_form(base_url, userinfo=True)
        home = Path(env["LANELAB_HOME"]) if env.get("LANELAB_HOME") else default_home()
        out = Path(env["LANELAB_OUT"]) if env.get("LANELAB_OUT") else repo_root() / "reports"
        for name, folder in (("LANELAB_HOME", home), ("LANELAB_OUT", out)):
            if folder.exists() and not folder.is_dir():  # (a missing one is made when first written)
                raise ConfigError(f"{name}={str(folder)!r} is a file, not a folder.",
                                  f"Point {name} at a folder (it is made when missing).")
        opt_in = env.get("LANELAB_LIVE_OPT_IN", "").strip().lower() in ("1", "yes", "true")
        ca_bundle = Path(env["LANELAB_CA_BUNDLE"]) if env.get("LANELAB_CA_BUNDLE") else None
        if ca_bundle is not None and not ca_bundle.is_file():
            raise ConfigError(f"LANELAB_CA_BUNDLE={str(ca_bundle)!r} is not a file; it must be a PEM bundle of CAs.")
        proxy = (env.get("LANELAB_PROXY") or "").strip() or None
        if proxy is not None:
            parts = urlsplit(proxy)
            if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
                raise ConfigError(f"LANELAB_PROXY={proxy!r} is not a proxy URL (http://HOST:PORT).")
            if base_url is not None and is_loopback_url(base_url):
                raise ConfigError("LANELAB_PROXY is set while LANELAB_BASE_URL is loopback; a proxy is only for "
                                  "Anthropic's hosts. Unset LANELAB_PROXY for the simulator.")
        return cls(mode=mode, base_url=base_url, home=home, out=out, live_opt_in=opt_in, ca_bundle=ca_bundle,
                   proxy=proxy)

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"
