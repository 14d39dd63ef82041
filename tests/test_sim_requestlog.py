"""The request log's body: a short body is logged whole without being measured, which is right only if no short body
can reach the log's size limit once parsed, redacted and written as JSON. Bodies built to grow the most (form fields
that are control characters, numbers like ``1e15``, empty secrets that get masked, escapes) stay within the bound
``log_body`` states: at most 14 characters of JSON a byte."""

from __future__ import annotations

import json

from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.redact import Redactor
from lanelab.sim.requestlog import LOG_BODY_LIMIT, LOG_WHOLE_BYTES, log_body

NUMBERS = ["1e15", "-9e15", "1E400", "-1e400", "1e-4", "0", "-0", "5e-324", "1.5", "1e22", "123456789012345678901"]
PIECES = ["", "a", "\\u0001", "\\n", "\\\\", '\\"', "\\ud83d\\ude00", "é", "token=abcdefghijkl", "Bearer ",
          "sk-ant-api03-", "sk-ant-oat01-abcdefghijklmnopqrstuvwxyz", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefgh"]
KEYS = ["token", "access_token", "password", "code", "x", "", "\\u0001", "authorization", "api_key", "grant_type"]


def strings(pieces: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=3).map(lambda parts: '"' + "".join(parts) + '"')


json_text = st.recursive(
    st.one_of(st.sampled_from(NUMBERS + ["true", "false", "null", "NaN", "Infinity"]), strings(PIECES)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(strings(KEYS), inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")),
    max_leaves=12)
form_text = st.lists(
    st.tuples(st.sampled_from(["\x01", "%01", "token", "a", "", "code", "\x7f", "%FF"]),
              st.sampled_from(["", "\x01", "%00", "abcdefghij", "sk-ant-api03-"])),
    min_size=1, max_size=6).map(lambda pairs: "&".join(f"{k}={v}" if v or k == "a" else k for k, v in pairs)).filter(bool)


@settings(max_examples=examples(400), deadline=None)
@given(body=st.one_of(json_text.map(lambda t: (t, "application/json")),
                      form_text.map(lambda t: (t, "application/x-www-form-urlencoded")),
                      st.binary(min_size=1, max_size=40).map(lambda b: (b.decode("latin-1"), "text/plain"))))
def test_a_short_body_stays_within_the_bound_log_body_relies_on(body: tuple[str, str]) -> None:
    text, content_type = body
    raw = text.encode("utf-8", errors="surrogatepass")
    redactor = Redactor()
    redactor.register_secret("sk-ant-oat01-abcdefghijklmnopqrstuvwxyz")
    logged = log_body(raw, content_type, redactor)
    written = logged if isinstance(logged, str) else json.dumps(logged, ensure_ascii=False)
    assert len(written) <= 14 * len(raw), (raw, written)


def test_the_worst_one_byte_body_is_exactly_at_the_bound() -> None:
    logged = log_body(b"\x01", "application/x-www-form-urlencoded", Redactor())
    assert json.dumps(logged, ensure_ascii=False) == '{"\\u0001": ""}'  # 14 characters for one byte


def test_short_bodies_are_whole_and_longer_ones_are_still_measured() -> None:
    assert 14 * LOG_WHOLE_BYTES <= LOG_BODY_LIMIT
    short = json.dumps({"x": "y" * (LOG_WHOLE_BYTES - 20)}).encode()
    assert log_body(short, "application/json", Redactor()) == json.loads(short)
    long = json.dumps({"x": "y" * (LOG_BODY_LIMIT + 10)}).encode()
    cut = log_body(long, "application/json", Redactor())
    assert cut["truncated"] is True and len(cut["preview"]) == LOG_BODY_LIMIT
