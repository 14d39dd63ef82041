"""A captured Claude Code request is a reference for diffs and lints only: the one place that builds every request
the kit sends refuses it, whatever file it was loaded from (a copied capture included)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lanelab.config import data_dir
from lanelab.matrix.from_capture import load_request
from lanelab.matrix.profiles import load_profile
from lanelab.wire.attestation import ATTESTATION_MARKER, FirstPartyRequest
from lanelab.wire.spec import RequestSpec, build_request

BASE = "http://127.0.0.1:9"


def test_the_reference_profile_cannot_be_built_with_or_without_its_block():
    reference = load_profile("claude-code-2.1.332")
    for spec in (reference.spec, reference.as_captured()):
        with pytest.raises(FirstPartyRequest, match="Claude Code's own") as err:
            build_request(spec, BASE, "sk-ant-oat01-" + "x" * 40)
        assert "reference for diffs and lints" in str(err.value)


def test_a_copied_claude_code_capture_is_refused_too(tmp_path: Path):
    copy = tmp_path / "renamed-capture.jsonl"
    shutil.copy(data_dir() / "captures" / "claude-code-2.1.332.jsonl", copy)
    _, spec = load_request(str(copy))  # as the kit would send it: the block is gone, Claude Code's headers stay
    with pytest.raises(FirstPartyRequest):
        build_request(spec, BASE, None)


@pytest.mark.parametrize("headers,body", [
    ({"x-claude-code-session-id": "s"}, {}),
    ({"X-Claude-1P-Request-Class": "main"}, {}),
    ({}, {"system": [{"type": "text", "text": ATTESTATION_MARKER}]}),
    ({}, {"system": "x-anthropic-billing-header: cc_version=0.0.0; cc_entrypoint=cli;"}),
])
def test_first_party_identification_is_never_sent(headers, body):
    with pytest.raises(FirstPartyRequest):
        build_request(RequestSpec(headers=headers, body=body or None), BASE, None)


def test_third_party_requests_build_as_before():
    for name in ("hermes-0.14.0", "hermes-0.19.0", "pi-0.73.1", "openclaw-2026.9.6", "sdk-minimal"):
        request = build_request(load_profile(name).spec, BASE, "sk-ant-oat01-" + "x" * 40)
        assert request.url.path == "/v1/messages"
