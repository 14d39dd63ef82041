"""PKCE: the RFC 7636 known answer, verifier shape and randomness, state independent of the verifier, masking."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.auth import pkce


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
@settings(max_examples=30)
def test_verifier_length_follows_rfc(nbytes):
    v = pkce.make_verifier(nbytes)
    assert 43 <= len(v) <= 128 and "=" not in v


def test_repr_masks_the_verifier_and_registers_it():
    m = pkce.generate()
    assert m.verifier not in repr(m)
    assert m.verifier not in redact.redact_text(f"oops {m.verifier}")
