"""The rehearsal's ground: inside the namespace the live host names reach the simulator over trusted TLS; outside
nothing changed; and inside nothing else is reachable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from lanelab.config import LIVE_API_BASE, LIVE_HOSTS
from lanelab.walkthrough import namespace

HOST_FILES = ("/etc/hosts", "/etc/nsswitch.conf")


def _snapshot() -> dict[str, bytes]:
    return {path: Path(path).read_bytes() for path in HOST_FILES if Path(path).exists()}


def _files_db_lookup(name: str) -> subprocess.CompletedProcess[str]:
    """This machine's answer for ``name`` from its hosts file only (``getent -s files``: no DNS query is sent)."""
    return subprocess.run(["getent", "-s", "files", "hosts", name], capture_output=True, text=True, check=False)


def test_live_hosts_reach_the_simulator_over_trusted_tls(rehearse):
    before = _snapshot()
    done = rehearse("smoke_http")
    assert done.returncode == 0, done.describe()
    result = done.result()
    # the kit ran exactly as live: default live URL, opt-in, the test CA only through LANELAB_CA_BUNDLE
    assert result["settings"] == {"mode": "live", "base_url": LIVE_API_BASE, "opt_in": True,
                                  "ca_bundle": result["settings"]["ca_bundle"]}
    assert result["settings"]["ca_bundle"].endswith("ca.pem")
    assert result["resolved"] == ["127.0.0.1"]
    assert result["models"]["status"] == 200
    assert result["models"]["url"] == "https://api.anthropic.com/v1/models"
    assert "claude-sonnet-4-6" in result["models"]["ids"]
    assert result["token_endpoint"]["status"] == 400
    assert result["token_endpoint"]["body"]["error"] == "invalid_grant"
    # without the test CA the same server is not trusted: the connection really is TLS under the test certificate
    assert result["without_test_ca"].startswith("ConnectError") and "CERTIFICATE_VERIFY_FAILED" in \
        result["without_test_ca"]
    # the simulator saw the requests under the real host names
    seen = [(r["headers"].get("host"), r["path"], r["status"]) for r in done.sim_requests]
    assert ("api.anthropic.com", "/v1/models", 200) in seen
    assert ("platform.claude.com", "/v1/oauth/token", 400) in seen
    # outside the namespace nothing changed: the host's files are as they were, and its hosts database does not
    # map any live name to loopback
    assert _snapshot() == before
    for name in sorted(LIVE_HOSTS):
        lookup = _files_db_lookup(name)
        assert lookup.returncode == 2 and lookup.stdout == "", f"{name} is in this machine's hosts file: {lookup}"


def test_nothing_else_is_reachable_inside(rehearse):
    done = rehearse("no_network")
    assert done.returncode == 0, done.describe()
    result = done.result()
    assert result["interfaces"] == ["lo"]
    # a name missing from the hosts file does not resolve (files only: no DNS query, no wait)
    for url in ("https://example.com/", "https://statsig.anthropic.com/", "https://www.anthropic.com/"):
        assert result[url].startswith("ConnectError") and "Name or service not known" in result[url], result[url]
    # no route leaves the namespace, for IPv4 or IPv6
    assert result["routes"] == {"192.0.2.1": "ENETUNREACH", "2001:db8::1": "ENETUNREACH"}
    assert "127.0.0.1 api.anthropic.com" in result["hosts_file"]
    assert not done.sim_requests


def test_the_bootstrap_refuses_outside_a_fresh_network_namespace(namespaces, tmp_path):
    """Started in this machine's network namespace, the bootstrap refuses and runs nothing. (It is started in a
    private mount namespace all the same, so that a broken check could not touch this machine's /etc/hosts.)"""
    marker = tmp_path / "ran"
    before = _snapshot()
    boot = namespace.command(["touch", str(marker)], {"api.anthropic.com"})
    python_at = boot.index("--") + 1
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", *boot[python_at:]],
                          capture_output=True, text=True, check=False)
    assert done.returncode == namespace.BOOTSTRAP_FAILED
    assert "not in a fresh net namespace" in done.stderr and "nothing was run" in done.stderr
    assert not marker.exists()
    assert _snapshot() == before


def test_a_command_runs_inside_with_the_environment_given(namespaces, tmp_path):
    out = tmp_path / "out.txt"
    script = f"getent hosts claude.ai > {out}; echo \"$LANELAB_TEST_VALUE\" >> {out}; test -z \"$DROPPED\""
    done = namespace.run(["sh", "-c", script], {"claude.ai"}, env={"LANELAB_TEST_VALUE": "given", "DROPPED": None},
                         capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().split("\n")
    assert lines[0].split() == ["127.0.0.1", "claude.ai"] and lines[1] == "given"
    missing = namespace.run(["lanelab-no-such-command"], {"claude.ai"}, capture_output=True, text=True)
    assert missing.returncode == 127 and "cannot run 'lanelab-no-such-command'" in missing.stderr


def test_test_ca_covers_the_live_hosts_and_leaves_no_key_behind():
    from cryptography import x509

    with namespace.test_ca() as ca:
        folder = ca.folder
        assert sorted(p.name for p in folder.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
        assert folder.stat().st_mode & 0o077 == 0 and ca.key_pem.stat().st_mode & 0o077 == 0
        cert = x509.load_pem_x509_certificate(ca.cert_pem.read_bytes())
        names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                    .get_values_for_type(x509.DNSName))
        assert names == set(namespace.live_hosts()) and LIVE_HOSTS <= names
        authority = x509.load_pem_x509_certificate(ca.ca_pem.read_bytes())
        assert cert.issuer == authority.subject and authority.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca
        assert b"PRIVATE KEY" not in ca.ca_pem.read_bytes() + ca.cert_pem.read_bytes()
        assert ca.tls().hostname == "api.anthropic.com" and ca.tls("claude.ai").certfile == ca.cert_pem
        with pytest.raises(ValueError, match="not for 'example.com'"):
            ca.tls("example.com")
        env = namespace.trust_env(ca.ca_pem)
        assert set(env) == {"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "LANELAB_CA_BUNDLE"}
        assert set(env.values()) == {str(ca.ca_pem)}
        assert "LANELAB_CA_BUNDLE" not in namespace.trust_env(ca.ca_pem, kit=False)
    assert not folder.exists()


def test_hosts_file_text_and_bad_names():
    text = namespace.hosts_file_text(["Claude.AI", "api.anthropic.com", "claude.ai"])
    assert text.splitlines()[2:] == ["127.0.0.1 api.anthropic.com", "127.0.0.1 claude.ai"]
    assert "::1 claude.ai" in namespace.hosts_file_text(["claude.ai"], ipv6=True)
    for bad in ([], ["a b"], ["x#y"], ["--evil"]):
        with pytest.raises(ValueError):
            namespace.hosts_file_text(bad)
    with pytest.raises(ValueError, match="No command"):
        namespace.command([], {"claude.ai"})


def test_unavailable_namespaces_are_explained(monkeypatch):
    probe = namespace.can_use_namespaces.__wrapped__
    monkeypatch.setattr(namespace.os, "geteuid", lambda: 1000)
    ok, reason = probe()
    assert not ok and reason.startswith("not running as root")
    monkeypatch.setattr(namespace.os, "geteuid", lambda: 0)
    monkeypatch.setattr(namespace.shutil, "which", lambda name: None)
    ok, reason = probe()
    assert not ok and "'unshare' command is missing" in reason
    monkeypatch.setattr(namespace.shutil, "which", lambda name: "/usr/bin/unshare")
    monkeypatch.setattr(namespace.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a[0], 1, "", "unshare: unshare failed: Operation not permitted\n"))
    ok, reason = probe()
    assert not ok and "Operation not permitted" in reason and "forbids it" in reason
    monkeypatch.setattr(namespace, "can_use_namespaces", lambda: (False, "not running as root"))
    with pytest.raises(namespace.NamespaceUnavailable, match="not running as root"):
        namespace.command(["true"], {"claude.ai"})


INSIDE_CLIENT = """
import json, os
from lanelab import http
with http.client() as client:
    answer = client.get("https://api.anthropic.com/v1/whoami").json()
print(json.dumps({"answer": answer, "client_netns": os.readlink("/proc/self/ns/net")}))
"""


def test_ports_bound_inside_are_served_from_outside(namespaces, test_ca):
    """``start``: the client is cut off inside the namespace while the server answering it runs out here, with
    this machine's network (what ``watch -- CMD`` needs in front of the live API)."""
    import sys

    from lanelab.config import repo_root
    from lanelab.serve import running_server
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def whoami(request):
        return JSONResponse({"host": request.headers["host"], "server_netns": os.readlink("/proc/self/ns/net")})

    app = Starlette(routes=[Route("/v1/whoami", whoami)])
    env = {"LANELAB_CA_BUNDLE": str(test_ca.ca_pem), "LANELAB_MODE": "live", "LANELAB_BASE_URL": None,
           "PYTHONPATH": str(repo_root() / "lib")}
    with namespace.start([sys.executable, "-c", INSIDE_CLIENT], {"api.anthropic.com"}, listen=[443], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as started:
        assert set(started.listeners) == {443}
        with running_server(app, sock=started.listeners[443], tls=test_ca.tls()) as served:
            assert served.base_url == "https://api.anthropic.com"
            out, err = started.process.communicate(timeout=60)
    assert started.process.returncode == 0, err
    seen = json.loads(out)
    assert seen["answer"]["host"] == "api.anthropic.com"
    assert seen["answer"]["server_netns"] == os.readlink("/proc/self/ns/net") != seen["client_netns"]
    assert started.listeners[443].fileno() == -1  # closed with the context


def test_start_reports_a_namespace_that_could_not_be_set_up(namespaces, tmp_path):
    marker = tmp_path / "ran"
    # the bootstrap never runs (its interpreter is /bin/false): no sockets come back, nothing of the command ran
    with pytest.raises(namespace.NamespaceUnavailable, match=r"could not be set up \(exit 1\)"):
        namespace.start(["touch", str(marker)], {"api.anthropic.com"}, python="/bin/false")
    assert not marker.exists()
    for bad in ([0], [443, 443], [70000]):
        with pytest.raises(ValueError):
            namespace.start(["touch", str(marker)], {"api.anthropic.com"}, listen=bad)
    assert not marker.exists()
