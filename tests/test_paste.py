"""Paste parsing: accepted shapes, each refusal with its own type, and no secret ever repeated in a message."""

import pytest
from fast_loop import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lanelab.auth import paste
from lanelab.errors import UserError

CODE = "Xy7_abcDEF-0123456789ghijKLMNop"
STATE = "St4te_0123456789abcdefGHIJ-klm"

GOOD = [
    (f"{CODE}#{STATE}", "plain code#state"),
    (f"  {CODE}#{STATE}\n", "surrounding whitespace"),
    (f'"{CODE}#{STATE}"', "double quotes"),
    (f"'{CODE}#{STATE}'", "single quotes"),
    (f" ` {CODE}#{STATE} ` ", "backticks and spaces"),
    (f"https://platform.claude.com/oauth/code/callback?code={CODE}&state={STATE}", "full callback URL"),
    (f"http://127.0.0.1:5555/oauth/code/callback?state={STATE}&code={CODE}", "loopback URL, reordered"),
    (f"http://localhost:5555/callback?code={CODE}#{STATE}", "URL with state in the fragment"),
    (f"code={CODE}&state={STATE}", "query string"),
    (f"?code={CODE}&state={STATE}", "query string with ?"),
]


@pytest.mark.parametrize("text,why", GOOD, ids=[w for _, w in GOOD])
def test_accepted_shapes(text, why):
    got = paste.parse_paste(text, expected_state=STATE)
    assert (got.code, got.state) == (CODE, STATE)


BAD = [
    ("", paste.EmptyPaste),
    ("   \n", paste.EmptyPaste),
    ('""', paste.EmptyPaste),
    (None, paste.EmptyPaste),
    (CODE, paste.MissingState),
    (f"{CODE}#", paste.MissingState),
    (f"https://platform.claude.com/oauth/code/callback?code={CODE}", paste.MissingState),
    (f"{CODE}#wrong-state-value-0000", paste.StateMismatch),
    ("sk-ant-oat01-" + "A" * 40, paste.TokenPasted),
    ("sk-ant-ort01-" + "B" * 40, paste.TokenPasted),
    ("sk-ant-api03-" + "C" * 40, paste.TokenPasted),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", paste.TokenPasted),
    (f"sk-ant-oat01-{'D' * 30}#{STATE}", paste.TokenPasted),
    (f"{CODE} extra words#{STATE}", paste.UnrecognisedPaste),
    ("https://example.com/nothing-here", paste.UnrecognisedPaste),
    (f"{CODE}#st@te!", paste.UnrecognisedPaste),
    ("<html>", paste.UnrecognisedPaste),
    (123, paste.UnrecognisedPaste),  # not text at all (a notebook's flow.submit_paste(123))
    (CODE.encode() + b"#" + STATE.encode(), paste.UnrecognisedPaste),
]


@pytest.mark.parametrize("text,error", BAD, ids=[f"{i}-{e.__name__}" for i, (_, e) in enumerate(BAD)])
def test_refusals_have_their_own_type_and_say_what_to_do(text, error):
    with pytest.raises(error) as info:
        paste.parse_paste(text, expected_state=STATE)
    assert isinstance(info.value, UserError) and isinstance(info.value, paste.PasteError)
    msg = str(info.value)
    assert error.hint and error.hint[:30] in msg
    for secret in (CODE, "A" * 40, "B" * 40, "C" * 40, "D" * 30):
        assert secret not in msg


def test_state_mismatch_explains_forged_callback_and_restart():
    with pytest.raises(paste.StateMismatch) as info:
        paste.parse_paste(f"{CODE}#other-state-abcdefgh", expected_state=STATE)
    msg = str(info.value).lower()
    assert "forged callback" in msg and "start the flow again" in msg


def test_without_expected_state_any_state_is_returned():
    assert paste.parse_paste(f"{CODE}#anything").state == "anything"


def test_repr_masks_code():
    got = paste.parse_paste(f"{CODE}#{STATE}")
    assert CODE not in repr(got)


_ALPHA = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=12, max_size=80)
_WRAP = st.sampled_from(["{}", " {} ", '"{}"', "'{}'", "\t{}\n", "` {} `"])


@given(code=_ALPHA, state=_ALPHA, wrap=_WRAP, shape=st.sampled_from(["hash", "url", "query"]))
@settings(max_examples=examples(200))
def test_any_wellformed_paste_round_trips(code, state, wrap, shape):
    assume(not code.startswith(("sk-ant-", "eyJ")))
    text = {"hash": f"{code}#{state}",
            "url": f"https://platform.claude.com/oauth/code/callback?code={code}&state={state}",
            "query": f"code={code}&state={state}"}[shape]
    got = paste.parse_paste(wrap.format(text), expected_state=state)
    assert (got.code, got.state) == (code, state)


#: What each refusal says is wrong (the hint, checked too, says what to do next).
WHAT_IS_WRONG = {
    paste.EmptyPaste: "nothing was pasted",
    paste.MissingState: "no state",
    paste.StateMismatch: "is not the one this login sent",
    paste.TokenPasted: "looks like",
    paste.UnrecognisedPaste: "pasted value",
}


@given(st.text(max_size=200))
@settings(max_examples=examples(300))
def test_any_input_is_parsed_or_refused_with_a_message_that_says_what_is_wrong(text):
    try:
        got = paste.parse_paste(text, expected_state=STATE)
    except paste.PasteError as exc:
        kind = type(exc)
        assert kind in WHAT_IS_WRONG, f"refused with the bare {kind.__name__}"
        msg = str(exc)
        assert WHAT_IS_WRONG[kind] in msg.lower(), msg
        assert kind.hint and kind.hint[:30] in msg, msg
    else:  # accepted: the state is the expected one and the code came from the text
        assert got.state == STATE and got.code and got.code in text


@given(code=_ALPHA, state=_ALPHA, other=_ALPHA)
@settings(max_examples=examples(150))
def test_refusals_never_repeat_the_code(code, state, other):
    assume(not code.startswith(("sk-ant-", "eyJ")) and state != other)
    for text in (f"{code}#{state}", code, f"{code} #{state}"):
        try:
            paste.parse_paste(text, expected_state=other)
        except paste.PasteError as exc:
            assert code not in str(exc)
