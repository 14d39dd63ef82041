"""PKCE (the one implementation client and simulator share): the RFC 7636 known answer, verifier shape and
randomness, state independent of the verifier, verification, masking, and who registers the verifier."""

import re

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab import pkce, redact
from lanelab.auth import oauth


def test_rfc7636_appendix_b_known_answer():
    assert pkce.challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_verifier_from_appendix_b_octets():
    octets = bytes([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
                    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])
    assert pkce.b64url(octets) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def test_generated_material_is_well_formed_and_fresh():
    a, b = pkce.generate(), pkce.generate()
    for m in (a, b):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", m.verifier)
        assert m.challenge == pkce.challenge_for(m.verifier)
        assert m.state != m.verifier and len(m.state) >= 43
        assert m.method == "S256"
    assert len({a.verifier, b.verifier, a.state, b.state}) == 4


@pytest.mark.parametrize("nbytes", [31, 97, 0])
def test_verifier_length_outside_rfc_is_refused(nbytes):
    with pytest.raises(ValueError, match="32 to 96"):
        pkce.make_verifier(nbytes)


@given(st.integers(min_value=32, max_value=96))
@settings(max_examples=examples(30))
def test_verifier_length_follows_rfc(nbytes):
    v = pkce.make_verifier(nbytes)
    assert 43 <= len(v) <= 128 and "=" not in v


def test_verify_accepts_only_the_matching_verifier():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verify(verifier, challenge)
    assert not pkce.verify(verifier[:-1] + "l", challenge)
    assert not pkce.verify("", pkce.challenge_for(""))  # an empty verifier never proves anything
    assert not pkce.verify(verifier, challenge + "x") and not pkce.verify(verifier, "")


@given(st.text(max_size=60), st.text(max_size=60))
@settings(max_examples=examples(60))
def test_verify_never_raises_on_junk(verifier, challenge):
    """A token endpoint cannot choose what it is sent: any text is a clean yes or no, never an exception."""
    assert pkce.verify(verifier, challenge) is (bool(verifier) and pkce.challenge_for(verifier) == challenge)


def test_repr_masks_the_verifier_and_generate_registers_nothing():
    m = pkce.generate()
    assert m.verifier not in repr(m)
    assert m.verifier not in redact.snapshot(), "the shared module must not touch a redaction registry"


def test_the_client_registers_its_verifier_when_it_starts_a_flow():
    auth = oauth.start(oauth.endpoint_set("live-claude-ai"))
    assert auth.pkce.verifier in redact.snapshot()
    assert auth.pkce.verifier not in redact.redact_text(f"oops {auth.pkce.verifier}")
