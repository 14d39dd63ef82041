"""The one HTTP client factory: every request the kit sends goes through a client made here.

What it enforces, whatever the caller does:

- **No environment proxies.** ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``.netrc`` are ignored
  (``trust_env=False``): a stray proxy variable must never receive a credential. A proxy for Anthropic's hosts can be
  set explicitly (``LANELAB_PROXY``); it is never used for loopback.
- **No redirects followed.** A 3xx is returned as it is, so a credential never follows a ``Location`` elsewhere.
- **The allow-list on every request.** Each request's URL (with no redirects, the final one) must be loopback or one
  of Anthropic's hosts, or :class:`~lanelab.errors.HostNotAllowed` is raised before a byte is sent.
- **Trust.** https uses the system store, or ``LANELAB_CA_BUNDLE`` when set (the offline rehearsal's test CA).
- **No cookies kept.** A ``Set-Cookie`` answer is recorded with its response and never sent back: each request
  carries exactly what it was built with, whatever the requests before it were answered (a controlled variant must
  not depend on its order), and no server-set value is held for later.

Returns ``httpx.Client``/``httpx.AsyncClient`` objects, so callers use the ordinary httpx API. For the official
``anthropic`` SDK's ``http_client=``, :func:`sdk_client` builds the same client from the httpx flavour the installed
SDK expects (anthropic 2 uses ``httpx2``, a fork with the same API).
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Any, TypeVar

import httpx

from lanelab import redact
from lanelab.config import LIVE_HOSTS, Settings, host_allowed, is_loopback
from lanelab.errors import HostNotAllowed

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

# httpx logs every request URL at INFO (?code=… included) and httpcore every response header at DEBUG (location
# included): wherever the kit sends requests, those loggers are quiet by default and redacted when turned up.
redact.guard_logging()

__all__ = ["DEFAULT_TIMEOUT", "async_client", "check_url", "client", "sdk_client"]


def check_url(url: str | httpx.URL) -> None:
    """Raise :class:`HostNotAllowed` unless ``url`` is loopback or one of Anthropic's hosts (over https)."""
    text = str(url)
    if not host_allowed(text):
        host = httpx.URL(text).host or text
        raise HostNotAllowed(
            f"Refusing to send a request to {host!r}: only loopback and Anthropic's hosts are allowed.",
            "Check LANELAB_BASE_URL (or the URL you passed) for a typo.")


@lru_cache(maxsize=4)
def _no_cookies(flavour: Any) -> type:
    """A cookie store of the httpx flavour ``flavour`` (httpx, or the SDK's httpx2) that keeps nothing a response
    sets (see the module docstring): httpx calls ``extract_cookies`` with every response."""
    return type("NoCookies", (flavour.Cookies,), {"extract_cookies": lambda self, response: None})


_Client = TypeVar("_Client")


def _keeping_no_cookies(made: _Client, flavour: Any = httpx) -> _Client:
    made._cookies = _no_cookies(flavour)()  # type: ignore[attr-defined]  # the store behind ``made.cookies``
    return made


def _check_request(request: httpx.Request) -> None:
    check_url(request.url)


async def _acheck_request(request: httpx.Request) -> None:
    check_url(request.url)


@lru_cache(maxsize=8)
def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """One TLS context per CA bundle (building one loads a certificate store: ~0.1 s, so it is cached)."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    import certifi  # httpx's own dependency

    return ssl.create_default_context(cafile=certifi.where())


def _options(settings: Settings | None, plain_http_only: bool, timeout: Any, limits: httpx.Limits | None,
             transport_cls: type) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    options: dict[str, Any] = {
        "timeout": timeout,
        "trust_env": False,
        "follow_redirects": False,
        # plain-http loopback needs no certificate store; any https request on such a client fails closed
        "verify": False if plain_http_only else _ssl_context(str(settings.ca_bundle) if settings.ca_bundle else None),
    }
    if limits is not None:
        options["limits"] = limits
    if settings.proxy and not plain_http_only:
        # the proxy carries only requests to Anthropic's hosts; loopback always goes direct
        proxied = transport_cls(proxy=settings.proxy, verify=options["verify"], **({"limits": limits} if limits else {}))
        options["mounts"] = {f"all://{host}": proxied for host in sorted(LIVE_HOSTS)}
    return options


def _plain_http_only(base_url: str | None) -> bool:
    if not base_url:
        return False
    url = httpx.URL(base_url)
    return url.scheme == "http" and is_loopback(url.host)


def _refuse_https(request: httpx.Request) -> None:
    if request.url.scheme != "http":
        raise HostNotAllowed("This client was made for a plain-http loopback server; it does not send over https.")


async def _arefuse_https(request: httpx.Request) -> None:
    _refuse_https(request)


def client(base_url: str | None = None, *, settings: Settings | None = None,
           timeout: Any = DEFAULT_TIMEOUT, limits: httpx.Limits | None = None) -> httpx.Client:
    """A synchronous client with the kit's rules (see the module docstring).

    ``base_url`` is a hint, not a restriction of the client: for a plain-http loopback server no TLS context is
    loaded, and such a client refuses https requests. Raises :class:`HostNotAllowed` from ``send``/``get``/… for a
    URL off the allow-list.
    """
    plain = _plain_http_only(base_url)
    hooks = [_check_request] + ([_refuse_https] if plain else [])
    return _keeping_no_cookies(httpx.Client(event_hooks={"request": hooks},
                                            **_options(settings, plain, timeout, limits, httpx.HTTPTransport)))


def async_client(base_url: str | None = None, *, settings: Settings | None = None,
                 timeout: Any = DEFAULT_TIMEOUT, limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """The asynchronous twin of :func:`client` (the runner and the capture proxy use it)."""
    plain = _plain_http_only(base_url)
    hooks = [_acheck_request] + ([_arefuse_https] if plain else [])
    return _keeping_no_cookies(httpx.AsyncClient(
        event_hooks={"request": hooks}, **_options(settings, plain, timeout, limits, httpx.AsyncHTTPTransport)))


def sdk_client(base_url: str | None = None, *, settings: Settings | None = None) -> Any:
    """:func:`client`'s rules for the official ``anthropic`` SDK: pass it as ``anthropic.Anthropic(http_client=…)``.

    Returns a client of the httpx flavour the installed SDK expects (``httpx2.Client`` for anthropic 2, else
    ``httpx.Client``), with the kit's timeout. Raises ``ImportError`` when the SDK is not installed, and
    :class:`HostNotAllowed` from each request for a URL off the allow-list.
    """
    import importlib

    import anthropic

    flavour = importlib.import_module(next(
        c.__module__.partition(".")[0] for c in anthropic.DefaultHttpxClient.__mro__
        if c.__name__ == "Client" and c.__module__.partition(".")[0] in ("httpx", "httpx2")))
    plain = _plain_http_only(base_url)
    hooks = [_check_request] + ([_refuse_https] if plain else [])
    timeout = flavour.Timeout(DEFAULT_TIMEOUT.read, connect=DEFAULT_TIMEOUT.connect)
    return _keeping_no_cookies(flavour.Client(event_hooks={"request": hooks},
                                              **_options(settings, plain, timeout, None, flavour.HTTPTransport)),
                               flavour)
