"""Sending one :class:`~lanelab.wire.spec.RequestSpec`: the request is built by
:func:`lanelab.wire.spec.build_request` (which attaches the credential only for an allowed host), sent through a
client from :mod:`lanelab.http`, and the answer read by :func:`lanelab.wire.observe.observe_response`. Network errors
become observations too.
"""

from __future__ import annotations

import time

import httpx

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.http import DEFAULT_TIMEOUT
from lanelab.wire.observe import observe_response
from lanelab.wire.spec import Observation, RequestSpec, build_request

__all__ = ["asend", "asend_request", "send"]


def _transport_failure(exc: Exception, started: float, endpoint: str | None = None) -> Observation:
    return Observation(
        status=None,
        transport_error=f"{type(exc).__name__}: {redact.redact_text(str(exc)) or 'connection failed'}",
        latency_ms=round((time.perf_counter() - started) * 1000, 2), endpoint=endpoint,
    )


def send(spec: RequestSpec, base_url: str, token: str | None = None, client: httpx.Client | None = None,
         timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> Observation:
    """Send ``spec`` once and return the :class:`Observation` of everything the response says.

    Network errors become observations too (``transport_error``); raises only what :func:`build_request` raises
    (nothing is sent then). Uses ``client`` if given, else a client from :func:`lanelab.http.client`.
    """
    request = build_request(spec, base_url, token)
    own = client is None
    client = client or lanelab_http.client(base_url, timeout=timeout)
    started = time.perf_counter()
    try:
        response = client.send(request)
        content = response.read()
        return observe_response(response.status_code, response.headers, content,
                                (time.perf_counter() - started) * 1000, endpoint=spec.path)
    except httpx.HTTPError as exc:
        return _transport_failure(exc, started, spec.path)
    finally:
        if own:
            client.close()


async def asend(spec: RequestSpec, base_url: str, token: str | None = None,
                client: httpx.AsyncClient | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> Observation:
    """The async twin of :func:`send`."""
    request = build_request(spec, base_url, token)
    if client is not None:
        return await asend_request(request, client, spec.path)
    async with lanelab_http.async_client(base_url, timeout=timeout) as own:
        return await asend_request(request, own, spec.path)


async def asend_request(request: httpx.Request, client: httpx.AsyncClient, endpoint: str | None) -> Observation:
    """Send a request :func:`build_request` made, through ``client`` (from :mod:`lanelab.http`), and return its
    :class:`Observation`; network errors become observations. The runner builds the request itself so that the
    cell's record can hold the body exactly as sent. ``endpoint`` is the request path."""
    started = time.perf_counter()
    try:
        response = await client.send(request)
        content = await response.aread()
        return observe_response(response.status_code, response.headers, content,
                                (time.perf_counter() - started) * 1000, endpoint=endpoint)
    except httpx.HTTPError as exc:
        return _transport_failure(exc, started, endpoint)
