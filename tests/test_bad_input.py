"""Bad input from every entry point (issue 12, item 15): one clear line, exit 2, no traceback, no secret, nothing lost.

Hundreds of bad inputs, generated and hand-written, go through the CLI in-process (``lanelab.cli.main``), the way a
user's shell would hand them over: refused arguments of every registered subcommand (found by walking the parser,
so commands added later are covered too), bad ports, bad ``--account`` JSON, every data file kind corrupted in
generic ways (binary, UTF-16, deep nesting, broken TOML, a folder, missing) and in type-specific ways, run files with
their types corrupted, unreachable servers, unusable or failing ``LANELAB_HOME``/``LANELAB_OUT``, bad settings.
Each case asserts:

- the exit status (2 for bad input) and exactly one line on stderr, ``lanelab CMD: …``;
- no ``Traceback`` anywhere in the output;
- no piece of an opaque canary (tokens in the credential store and the environment, no ``sk-ant-`` prefix) in the
  output or in any file the case wrote; each case runs with and without ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``
  pointing at a local listener, which must receive nothing;
- nothing lost: every file that existed before (the credential store, an earlier run, the inputs, data/) is unchanged.

A case that would start serving, open a browser or execute notebooks instead of refusing fails at once (the test
replaces those entry points by a tripwire), so a missing check shows up as a failure, not a hang.

Separately: the capture proxy answers odd request targets with a 400, records the exchange and forwards nothing;
output piped into a reader that stops early, Ctrl-C and a bug (an unexpected exception) print no traceback either;
a resumed run over a damaged run file loses nothing. The counts are recorded for ``make audit``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import functools
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lanelab import cli, redact
from lanelab.auth.credential import Credential
from lanelab.auth.store import CredentialStore
from lanelab.config import repo_root
from lanelab.devtools import audit

pytestmark = pytest.mark.hardening

REPO = repo_root()
DATA = REPO / "data"
SAMPLE_RUN = min((DATA / "runs" / "samples").glob("*.jsonl"))
CAPTURE = min((DATA / "captures").glob("*.jsonl"))

#: Opaque canaries: no sk-ant- prefix, so only the kit's secret registry can mask them.
STORE_ACCESS = "Kv7Qm2Zx9Tp4Lw8Rs3Nd6Hg1Jf5Yc0UbEa"
STORE_REFRESH = "Wd4RfTg7YhUj2IkOl9PzXc6VbNm3AsQe8Dw"
ENV_TOKEN = "Pn5Xc8Vb2Nm7Lk4Jh9Gf3Ds6Ap1Qw0ErTy"
CANARIES = (STORE_ACCESS, STORE_REFRESH, ENV_TOKEN)
WINDOWS = frozenset(c[i:i + 8] for c in CANARIES for i in range(len(c) - 7))

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
#: Inputs that are not what a command wants; created once per module under INPUTS.
DIRECTORY, MISSING = object(), object()

TALLY: Counter[str] = Counter()
TRACEBACKS: Counter[str] = Counter()
LEAK_RUNS: Counter[str] = Counter()


# --------------------------------------------------------------------------------------------------- the world
class Listener:
    """A TCP listener standing in for a proxy or another host: it records every connection it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[bytes] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(0.5)
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            self.connections.append(data or b"<connected>")
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@dataclass
class World:
    root: Path
    home: Path
    inputs: Path
    listener: Listener
    sim_url: str | None = None
    counter: int = 0

    def home_dir(self) -> Path:
        """A fresh copy of the credential store holding the canary credential (which must survive unchanged)."""
        self.counter += 1
        home = self.root / "homes" / str(self.counter)
        shutil.copytree(self.home, home)
        return home

    def out_dir(self) -> Path:
        """A fresh LANELAB_OUT holding an earlier run (which must survive every case unchanged)."""
        self.counter += 1
        out = self.root / "out" / str(self.counter)
        (out / "runs").mkdir(parents=True)
        lines = SAMPLE_RUN.read_text(encoding="utf-8").splitlines()[:3]
        (out / "runs" / "earlier.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out

    def data_variant(self, rel: str, content: Any) -> Path:
        """A data folder like data/ (links to the real files) with ``rel`` replaced by ``content``."""
        self.counter += 1
        root = self.root / "data" / str(self.counter)
        for src in DATA.rglob("*"):
            if src.is_dir():
                continue
            dst = root / src.relative_to(DATA)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
        target = root / rel
        target.unlink(missing_ok=True)
        if content is DIRECTORY:
            target.mkdir()
        elif content is not MISSING:
            target.write_bytes(content)
        return root


def _make_inputs(root: Path) -> None:
    files: dict[str, bytes] = {
        "binary.bin": bytes(range(256)) * 8 + ENV_TOKEN.encode(),
        "utf16.json": json.dumps({"record": "header", "run_id": "x"}).encode("utf-16"),
        "utf16.jsonl": (json.dumps({"record": "header", "run_id": "x"}) + "\n").encode("utf-16"),
        "empty.jsonl": b"",
        "empty.json": b"",
        "hello.txt": b"hello\n",
        "array.json": b"[1, 2, 3]",
        "deep_array.json": b"[" * 100_000 + b"]" * 100_000,
        "deep_object.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "deep_lines.jsonl": b'{"record": "cell", "cell_id": "c", "levels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "scalars.jsonl": b"1\n\"x\"\nnull\ntrue\n[]\n",
        "not_a_profile.toml": b'a = 1\n[b]\nc = "d"\n',
        "broken.toml": b"[request\nmethod = \n",
        "capture_types.jsonl": (json.dumps({"record": "capture"}) + "\n" + json.dumps(
            {"record": "exchange", "request": "POST /v1/messages", "response": []}) + "\n").encode(),
        "capture_headers.jsonl": (json.dumps({"record": "exchange", "request": {
            "method": "POST", "path": "/v1/messages", "headers": "authorization: x", "body": {"json": "x"}},
            "response": {"status": "ok"}}) + "\n").encode(),
        "capture_none.jsonl": (json.dumps({"record": "capture"}) + "\n").encode(),
        "afile": b"a file where a folder is expected\n",
        "secret.json": json.dumps({"access_token": ENV_TOKEN, "plan": [ENV_TOKEN]}).encode(),
    }
    root.mkdir(parents=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
    (root / "adir").mkdir()
    (root / "adir.jsonl").mkdir()
    (root / "adir.toml").mkdir()
    (root / "noaudit").mkdir()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("badinput")
    home = root / "home"
    saved = redact.snapshot()
    CredentialStore(home).save(Credential(label="canary", access_token=STORE_ACCESS, refresh_token=STORE_REFRESH,
                                          expires_at=time.time() + 3600, mode="sim", issuer="http://127.0.0.1:9"))
    redact.restore(saved)  # the kit must learn these from the store itself, not from this fixture
    _make_inputs(root / "inputs")
    listener = Listener()
    try:
        yield World(root=root, home=home, inputs=root / "inputs", listener=listener)
    finally:
        listener.close()


@pytest.fixture(scope="module", autouse=True)
def record_figures() -> Iterator[None]:
    """After the module: how many bad inputs were tried, tracebacks seen and leak paths tried (``make audit``)."""
    yield
    tried = sum(TALLY.values())
    if tried:
        audit.record("bad_input", bad_inputs_tried=tried, tracebacks=sum(TRACEBACKS.values()),
                     leak_paths_tried=sum(LEAK_RUNS.values()),
                     detail={"by_category": dict(sorted(TALLY.items())), "tracebacks": dict(TRACEBACKS)})


# -------------------------------------------------------------------------------------------------- running a case
class WouldRun(BaseException):
    """A case got as far as serving, opening a browser or executing notebooks: its bad input was not refused."""


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    data: tuple[str, Any] | None = None
    fault: tuple[str, int] | None = None
    expect: int = 2
    sim: bool = False
    stdin: str = ""

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


@dataclass
class Outcome:
    rc: int | None
    out: str
    err: str
    files: dict[str, bytes] = field(default_factory=dict)


def _guarded_capture(real: Callable[..., Any]) -> Callable[..., Any]:
    @contextlib.contextmanager
    def started(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs):
            raise WouldRun("the capture proxy started")
        yield  # pragma: no cover

    return started


def _tripwires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points a refused input must never reach (serving forever, a browser, notebooks)."""
    import webbrowser

    from lanelab import serve
    from lanelab.devtools import lab as devlab
    from lanelab.devtools import notebook_exec
    from lanelab.walkthrough import capture

    def trip(what: str) -> Callable[..., Any]:
        def fire(*_: Any, **__: Any) -> Any:
            raise WouldRun(what)
        return fire

    monkeypatch.setattr(serve, "serve_forever", trip("a server started serving"))
    monkeypatch.setattr(serve, "wait_for_stop", trip("a command started serving until Ctrl-C"))
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # a command's handlers must not replace pytest's
    monkeypatch.setattr(notebook_exec, "execute", trip("a notebook started executing"))
    monkeypatch.setattr(devlab, "running_lab", trip("JupyterLab started"))
    monkeypatch.setattr(webbrowser, "open", trip("a browser opened"))
    monkeypatch.setattr(capture, "running_capture", _guarded_capture(capture.running_capture))


@contextlib.contextmanager
def disk_fault(root: Path, err: int) -> Iterator[None]:
    """Every write under ``root`` fails with ``err`` (ENOSPC: the disk is full; EROFS: read-only), as the kernel
    would say it (tests run as root, where permissions do not stop a write)."""
    import builtins

    prefix = str(root)
    real_io_open, real_os_open = io.open, os.open

    def under(path: Any) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(prefix)
        except TypeError:
            return False

    def fake_io_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and under(file):
            raise OSError(err, os.strerror(err), os.fsdecode(file))
        return real_io_open(file, mode, *args, **kwargs)

    def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return real_os_open(path, flags, *args, **kwargs)

    io.open = builtins.open = fake_io_open  # type: ignore[assignment]
    os.open = fake_os_open  # type: ignore[assignment]
    try:
        yield
    finally:
        io.open = builtins.open = real_io_open  # type: ignore[assignment]
        os.open = real_os_open  # type: ignore[assignment]


def _fingerprint(roots: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Size, modification time and mode of everything but folders under ``roots`` (links not followed below a root),
    by path. With ``os.scandir``: this runs twice for each of hundreds of cases, and ``Path.rglob`` costs seconds."""
    out: dict[str, tuple[int, int, int]] = {}

    def note(path: str, st: os.stat_result) -> None:
        out[path] = (st.st_size, st.st_mtime_ns, st.st_mode)

    def visit(folder: str) -> None:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        visit(entry.path)
                    else:
                        note(entry.path, st)

    for root in map(str, roots):
        with contextlib.suppress(OSError):
            st = os.lstat(root)
            if not stat.S_ISDIR(st.st_mode):
                note(root, st)
        if os.path.isdir(root):
            visit(root)
    return out


def _written(before: dict[str, tuple[int, int, int]], roots: list[Path]) -> dict[str, bytes]:
    """Files under ``roots`` that are new or changed since ``before``, with their bytes."""
    out = {}
    for path, sig in _fingerprint(roots).items():
        if before.get(path) != sig and not os.path.islink(path):
            with contextlib.suppress(OSError):
                out[path] = Path(path).read_bytes()
    return out


def _bug_dir() -> Path:
    return Path(tempfile.gettempdir()) / "lanelab-bugs"


def fmt(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def run_cli(world: World, case: Case, proxy: bool, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """Run ``case`` through ``lanelab.cli.main`` in this process, as a shell would, and collect what it left."""
    out_dir, home = world.out_dir(), world.home_dir()
    values = {"inputs": str(world.inputs), "out": str(out_dir), "home": str(home),
              "afile": str(world.inputs / "afile"), "sample_run": str(SAMPLE_RUN), "capture": str(CAPTURE),
              "sim": world.sim_url or "http://127.0.0.1:9", "listener": world.listener.url}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_") and k not in PROXY_VARS}
    env.update(LANELAB_HOME=str(home), LANELAB_OUT=str(out_dir), CLAUDE_CODE_OAUTH_TOKEN=ENV_TOKEN)
    if proxy:
        env.update({k: world.listener.url for k in PROXY_VARS})
    env.update({k: fmt(v, values) for k, v in case.env})
    if case.data is not None:
        env["LANELAB_DATA"] = str(world.data_variant(*case.data))
    argv = [fmt(a, values) for a in case.argv]
    roots = [home, world.inputs, out_dir, DATA, _bug_dir()]
    before = _fingerprint(roots)
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO(case.stdin))
    _tripwires(monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    fault = contextlib.nullcontext()
    if case.fault:
        fault = disk_fault(home if case.fault[0] == "home" else out_dir, case.fault[1])
    rc: int | None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), fault:
            try:
                rc = cli.main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        monkeypatch.undo()
    kept = (str(home), str(DATA), str(world.inputs))
    changed_before = {p: before[p] for p in before if p.startswith(kept) or p.endswith("earlier.jsonl")}
    after = _fingerprint(roots)
    lost = sorted(p for p, sig in changed_before.items() if after.get(p) != sig)
    assert not lost, f"{case.id}: files that existed were changed or removed: {lost}"
    return Outcome(rc, out.getvalue(), err.getvalue(), _written(before, roots))


def check(case: Case, result: Outcome, world: World, proxy: bool) -> None:
    text = result.out + result.err
    if "Traceback" in text:
        TRACEBACKS[case.category] += 1
    assert "Traceback" not in text, f"{case.id}: traceback shown:\n{text[-3000:]}"
    for where, content in [("output", text), *((p, b.decode("latin-1")) for p, b in result.files.items())]:
        hits = sorted(w for w in WINDOWS if w in content)
        assert not hits, f"{case.id}: canary pieces {hits[:3]} in {where}"
    assert not world.listener.connections, f"{case.id}: the listener (proxy={proxy}) got {world.listener.connections}"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.rc == case.expect, f"{case.id}: exit {result.rc}, expected {case.expect}; stderr: {result.err[-2000:]}"
    if case.expect == 2:
        assert len(lines) == 1, f"{case.id}: stderr is not one line: {lines}"
        command = case.argv[0] if case.argv and not case.argv[0].startswith("-") else ""
        assert lines[0].startswith(f"lanelab {command}".rstrip() + ":" if command else "lanelab"), lines[0]
        assert "internal error" not in lines[0], f"{case.id}: treated as a bug: {lines[0]}"


# ---------------------------------------------------------------------------------------------------- the cases
#: Arguments that make each command valid, so that one bad value is the only thing wrong.
MINIMAL: dict[str, tuple[str, ...]] = {
    "lint": ("{capture}",), "diff": ("sdk-minimal", "hermes-0.14.0"),
    "bisect": ("--pass", "sdk-minimal", "--fail", "hermes-0.14.0"), "matrix": ("--dry-run", "--factors", "auth"),
    "report": ("{sample_run}", "--out", "{out}"), "audit": ("--dir", "{inputs}/noaudit"),
}
INT_VALUES = ("abc", "1.5", "", "0x1F", "-99999999999999999999")


def _subparsers() -> dict[str, Any]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


def _is_int(action: Any) -> bool:
    return action.type is int or bool(getattr(action.type, "integer", False))


def argument_cases() -> list[Case]:
    """Generated from every registered subcommand's parser: unknown options, values of the wrong kind, choices
    that do not exist, required arguments left out, ports out of range."""
    cases = []
    for name, sub in _subparsers().items():
        base = MINIMAL.get(name, ())
        cases.append(Case("arguments", f"{name}-unknown-option", (name, *base, "--no-such-option")))
        cases.append(Case("arguments", f"{name}-stray-argument", (name, *base, "--", "stray", "more")))
        if any(a.required and (a.option_strings or a.nargs not in ("?", "*", argparse.REMAINDER)) for a in sub._actions):
            cases.append(Case("arguments", f"{name}-required-missing", (name,)))
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            opt = action.option_strings[-1]
            if opt == "--port":
                for value in ("99999", "65536", "-1", "-99999999999999999999", "http"):
                    cases.append(Case("ports", f"{name}-port={value}", (name, *base, "--port", value)))
            elif _is_int(action):
                for value in INT_VALUES:
                    cases.append(Case("arguments", f"{name}{opt}={value!r}", (name, *base, opt, value)))
            elif action.choices:
                cases.append(Case("arguments", f"{name}{opt}=bogus", (name, *base, opt, "no-such-choice")))
    return cases


def _all_cells(path: Path, change: Callable[[dict[str, Any]], None], header: bool = False) -> bytes:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in records:
        if r.get("record") == ("header" if header else "cell"):
            change(r)
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def _setter(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        node = record
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


RUN_CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "cell_id-list": _setter(("cell_id",), [1]), "cell_id-int": _setter(("cell_id",), 5),
    "levels-string": _setter(("levels",), "tools=profile"), "levels-list": _setter(("levels",), ["tools"]),
    "level-table": _setter(("levels", "tools"), {"a": 1}), "observation-list": _setter(("observation",), [1]),
    "unified-string": _setter(("observation", "unified"), "plan"),
    "status-text": _setter(("observation", "status"), "400"),
    "status-huge": _setter(("observation", "status"), 10**30),
    "outcome-table": _setter(("outcome",), {"id": "served_plan"}), "outcome-int": _setter(("outcome",), 7),
    "spec-string": _setter(("spec",), "POST /v1/messages"), "query-list": _setter(("spec", "query"), [1]),
    "headers-list": _setter(("spec", "headers"), ["a"]), "window-list": _setter(("observation", "unified",
                                                                                    "five_hour"), [1]),
    "credential-table": _setter(("credential",), {"label": "x"}), "path-int": _setter(("spec", "path"), 5),
    "profile-list": _setter(("profile",), ["x"]), "latency-text": _setter(("observation", "latency_ms"), "fast"),
}


def run_file_cases(tmp: Path) -> list[Case]:
    """Run files whose types are damaged in every cell (nothing usable: exit 2), in one cell only (a warning per
    skipped record, the report is still written: exit 0), in the header, and files that are no run file at all."""
    tmp.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, change in RUN_CORRUPTIONS.items():
        every = tmp / f"every-{name}.jsonl"
        every.write_bytes(_all_cells(SAMPLE_RUN, change))
        cases.append(Case("run files", f"report-every-cell-{name}", ("report", str(every), "--out", "{out}")))
    lines = SAMPLE_RUN.read_text(encoding="utf-8").splitlines()
    for name in ("cell_id-list", "outcome-table", "observation-list", "status-huge", "levels-string"):
        one = tmp / f"one-{name}.jsonl"
        first_cell = json.loads(lines[1])
        RUN_CORRUPTIONS[name](first_cell)
        one.write_text("\n".join([lines[0], json.dumps(first_cell), *lines[2:]]) + "\n", encoding="utf-8")
        cases.append(Case("run files", f"report-one-cell-{name}", ("report", str(one), "--out", "{out}"), expect=0))
    for name, change in {"run_id-list": _setter(("run_id",), ["x"]), "factors-int": _setter(("factors",), 5),
                         "policy-table": _setter(("policy",), {"a": 1})}.items():
        head = tmp / f"header-{name}.jsonl"
        head.write_bytes(_all_cells(SAMPLE_RUN, change, header=True))
        cases.append(Case("run files", f"report-header-{name}", ("report", str(head), "--out", "{out}"), expect=0))
    for name in ("binary.bin", "utf16.jsonl", "empty.jsonl", "hello.txt", "array.json", "deep_array.json",
                 "deep_lines.jsonl", "scalars.jsonl", "not_a_profile.toml", "adir.jsonl", "missing.jsonl",
                 "capture_types.jsonl"):
        cases.append(Case("run files", f"report-{name}", ("report", "{inputs}/" + name, "--out", "{out}")))
    cases.append(Case("run files", "report-name-traversal", ("report", "{sample_run}", "--out", "{out}", "--rows",
                                                              "no-such-column")))
    return cases


def _to_toml(doc: dict[str, Any]) -> bytes:
    """A TOML document with the same content, every top-level key as one inline value (enough for these tests)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))
    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in doc.items()).encode()


@functools.cache
def _parsed(rel: str) -> dict[str, Any]:
    """A data file as parsed, once per file (the cases are built when each worker collects this module)."""
    return tomllib.loads((DATA / rel).read_text(encoding="utf-8"))


def _edited(rel: str, path: tuple[Any, ...], new: Any = MISSING) -> bytes:
    doc = copy.deepcopy(_parsed(rel))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if new is MISSING:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(new)
    return _to_toml(doc)


#: For each data file: a command that reads it, and its type-specific corruptions (key path, new value).
DATA_FILES: dict[str, tuple[tuple[str, ...], bool, list[tuple[tuple[Any, ...], Any]]]] = {
    "factors.toml": (("matrix", "--dry-run", "--factors", "auth"), False, [
        (("factors",), MISSING), (("factors",), "auth"), (("factors", "auth", "levels"), "bearer"),
        (("factors", "auth", "levels", "bearer", "kind"), 5), (("factors", "auth", "levels", "bearer", "args"), "x"),
        (("factors", "auth", "levels", "bearer", "args", "style"), 7),
        (("factors", "auth", "levels", "bearer", "args", "style"), "cookie"),
        (("factors", "auth", "levels", "bearer", "changes"), "headers.authorization"),
        (("factors", "auth", "levels", "bearer", "source"), MISSING), (("factors", "auth", "stage"), "late"),
        (("factors", "auth", "baseline"), "nope"), (("identity", "texts"), "You are Claude Code"),
        (("factors", "tools", "levels", "memory_session_search", "args", "tools"), [])]),
    "profiles/sdk-minimal.toml": (("diff", "sdk-minimal", "hermes-0.14.0"), False, [
        (("request",), "POST /v1/messages"), (("request", "headers"), ["accept"]), (("request", "body"), "{}"),
        (("request", "body", "messages"), {"role": "user"}), (("request", "auth"), "cookie"), (("sources",), "one"),
        (("extends",), 5), (("extends",), "../../etc/passwd"), (("request", "path"), "v1/messages"),
        (("request", "query"), [1]), (("request", "headers", "accept"), {"a": 1}), (("sources",), [])]),
    "outcomes.toml": (("report", "{sample_run}", "--out", "{out}"), False, [
        (("class",), MISSING), (("class",), {"id": "x"}), (("class", 0, "colour"), 5), (("class", 0, "colour"), "red"),
        (("rule", 0, "status"), "400"), (("rule", 0, "message"), "(("), (("rule", 0, "outcome"), ["served_plan"]),
        (("rule", 0, "outcome"), "no_such_class"), (("known", 0, "what"), "other"), (("rule",), "x"),
        (("class", 0, "transient"), "yes")]),
    "lanes.toml": (("matrix", "--factors", "auth", "--no-progress"), True, [
        (("lane",), MISSING), (("lane",), {"id": "plan"}), (("lane", 0, "id"), 5), (("claim", 0, "lane"), ["plan"]),
        (("headers", "status_values"), "allowed"), (("window", 0, "fields"), "utilization"),
        (("claim", 0, "lane"), "no_such_lane")]),
    "usage_fields.toml": (("login", "--auto"), True, [
        (("key",), "five_hour"), (("key", 0, "kind"), 5), (("key", 0, "kind"), "galaxy"),
        (("object", "window", "fields"), "utilization"), (("object",), ["window"]), (("key", 0, "codename"), "yes"),
        (("key", 0, "source"), MISSING)]),
    "oauth.toml": (("login", "--auto", "--no-probe"), True, [
        (("client",), MISSING), (("client",), "x"), (("client", "client_id"), 5),
        (("endpoints", "sim", "token_urls"), "/v1/oauth/token"), (("endpoints", "sim", "scopes"), 5),
        (("endpoints", "sim", "scopes"), "no_such_set"), (("variants", "axios-json", "body"), "xml"),
        (("probes", "usage_path"), 5), (("endpoints",), MISSING), (("endpoints", "sim", "token_urls"), [])]),
    "diff_annotations.toml": (("diff", "sdk-minimal", "hermes-0.14.0"), False, [
        (("annotation",), {"id": "x"}), (("annotation", 0, "note"), 5), (("annotation", 0, "value_pattern"), "(("),
        (("annotation", 0, "id"), MISSING), (("annotation", 0, "source"), "")]),
    "triggers.toml": (("lint", "hermes-0.14.0"), False, [
        (("trigger",), {"id": "x"}), (("trigger", 0, "match"), "tools"), (("trigger", 0, "kind"), 5),
        (("trigger", 0, "edits", 0, "op"), "inject"), (("remedies",), "x"), (("trigger", 0, "reports"), "one"),
        (("trigger", 0, "match", 0, "pattern"), "((")]),
    "version_gate.toml": (("lint", "hermes-0.14.0"), False, [
        (("gate",), "x"), (("gate",), MISSING), (("model", 0, "floor"), 2), (("gate", "version_pattern"), "(("),
        (("model",), {"id": "x"}), (("gate", "version_pattern"), "^claude-cli/(\\d+)")]),
}


def _generic_corruptions(rel: str) -> dict[str, Any]:
    text = (DATA / rel).read_text(encoding="utf-8")
    return {
        "binary": bytes(range(256)) * 4, "utf16": text.encode("utf-16"), "utf16le": text.encode("utf-16-le"),
        "nul-inside": text.encode()[:200] + b"\x00" + text.encode()[200:], "broken-toml": b"[[rule]\nid = \n",
        "deep": b"a = " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "empty": b"", "array-top": b"x = [1, 2]\n",
        "directory": DIRECTORY, "missing": MISSING, "latin1": text.replace("e", "\u00e9").encode("latin-1", "replace"),
    }


def data_file_cases() -> list[Case]:
    cases = []
    for rel, (argv, needs_sim, specific) in DATA_FILES.items():
        env = (("LANELAB_BASE_URL", "{sim}"),) if needs_sim else ()
        for name, content in _generic_corruptions(rel).items():
            cases.append(Case("data files", f"{rel}-{name}", argv, env=env, data=(rel, content), sim=needs_sim))
        for path, new in specific:
            label = ".".join(map(str, path)) + ("-removed" if new is MISSING else f"={json.dumps(new)[:30]}")
            cases.append(Case("data files", f"{rel}-{label}", argv, env=env, data=(rel, _edited(rel, path, new)),
                              sim=needs_sim))
    return cases


def account_cases() -> list[Case]:
    values = {
        "deep-inline": '{"a":' * 50_000 + "1" + "}" * 50_000, "deep-file": "{inputs}/deep_object.json",
        "array": "[1, 2]", "string": '"pro"', "number": "5", "null": "null", "truncated": '{"plan": ',
        "python-quotes": "{'plan': 'pro'}", "plan-int": '{"plan": 5}', "extra-usage-string": '{"extra_usage": "x"}',
        "limit-text": '{"extra_usage": {"monthly_limit": "lots"}}', "enabled-text": '{"extra_usage": {"is_enabled": '
        '"yes"}}', "utilization-text": '{"five_hour_utilization": "high"}', "missing-file": "{inputs}/nope.json",
        "directory": "{inputs}/adir", "binary": "{inputs}/binary.bin", "utf16": "{inputs}/utf16.json",
        "empty-file": "{inputs}/empty.json", "array-file": "{inputs}/array.json", "secret-file": "{inputs}/secret.json",
        "nan": '{"five_hour_utilization": NaN, "plan": []}',
    }
    return [Case("sim --account", name, ("sim", "--account", value)) for name, value in values.items()]


SETTINGS_COMMANDS: dict[str, tuple[str, ...]] = {
    "creds": (), "matrix": ("--dry-run", "--factors", "auth"), "report": ("{sample_run}", "--out", "{out}"),
    "bisect": MINIMAL["bisect"], "login": ("--auto",), "capture": ("--upstream", "{sim}"), "demo": (), "lab": (),
}


def settings_cases() -> list[Case]:
    bad = {"mode": ("LANELAB_MODE", "bogus"), "base-url-foreign": ("LANELAB_BASE_URL", "http://evil.example:8080"),
           "base-url-port": ("LANELAB_BASE_URL", "http://127.0.0.1:99999"),
           "base-url-userinfo": ("LANELAB_BASE_URL", "http://user:pw@127.0.0.1:9"),
           "base-url-ftp": ("LANELAB_BASE_URL", "ftp://127.0.0.1/"), "ca-bundle": ("LANELAB_CA_BUNDLE", "/no/such.pem"),
           "proxy": ("LANELAB_PROXY", "not a proxy")}
    cases = []
    for command, args in SETTINGS_COMMANDS.items():
        for name, pair in bad.items():
            cases.append(Case("settings", f"{command}-{name}", (command, *args), env=(pair,)))
    return cases


def unreachable_cases() -> list[Case]:
    cases = []
    for url in ("http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.0.0.1:1"):
        for argv in (("matrix", "--factors", "auth", "--no-progress"), ("login", "--auto", "--no-probe"),
                     ("bisect", *MINIMAL["bisect"])):
            cases.append(Case("unreachable server", f"{argv[0]}-{url}", argv, env=(("LANELAB_BASE_URL", url),)))
    return cases


def disk_cases() -> list[Case]:
    sim = (("LANELAB_BASE_URL", "{sim}"),)
    cases = [
        Case("disk", "matrix-out-is-a-file", ("matrix", "--factors", "auth", "--no-progress"),
             env=(*sim, ("LANELAB_OUT", "{afile}")), sim=True),
        Case("disk", "bisect-out-is-a-file", ("bisect", *MINIMAL["bisect"]), env=(*sim, ("LANELAB_OUT", "{afile}")),
             sim=True),
        Case("disk", "report-out-is-a-file", ("report", "{sample_run}", "--out", "{afile}")),
        Case("disk", "report-default-out-is-a-file", ("report", "{sample_run}"), env=(("LANELAB_OUT", "{afile}"),)),
        Case("disk", "demo-out-is-a-file", ("demo", "--out", "{afile}")),
        Case("disk", "capture-out-under-a-file", ("capture", "--upstream", "{sim}", "--out", "{afile}/c.jsonl"),
             sim=True),
        Case("disk", "capture-profiles-dir-is-a-file", ("capture", "--to-profile", "x", "{capture}", "--profiles-dir",
                                                        "{afile}")),
        Case("disk", "login-home-is-a-file", ("login", "--auto", "--no-probe"), env=(*sim, ("LANELAB_HOME", "{afile}")),
             sim=True),
    ]
    for err in (errno.ENOSPC, errno.EROFS):
        tag = errno.errorcode[err]
        cases += [
            Case("disk", f"matrix-out-{tag}", ("matrix", "--factors", "auth", "--no-progress"), env=sim,
                 fault=("out", err), sim=True),
            Case("disk", f"bisect-out-{tag}", ("bisect", *MINIMAL["bisect"]), env=sim, fault=("out", err), sim=True),
            Case("disk", f"report-out-{tag}", ("report", "{sample_run}"), fault=("out", err)),
            Case("disk", f"login-home-{tag}", ("login", "--auto", "--no-probe"), env=sim, fault=("home", err),
                 sim=True),
            Case("disk", f"capture-out-{tag}", ("capture", "--upstream", "{sim}"), fault=("out", err), sim=True),
        ]
    return cases


def command_cases() -> list[Case]:
    """Hand-written: what a clumsy user types to each command."""
    c = "commands"
    return [
        Case(c, "lint-missing", ("lint", "{inputs}/nope.jsonl")), Case(c, "lint-dir", ("lint", "{inputs}/adir")),
        Case(c, "lint-binary", ("lint", "{inputs}/binary.bin")), Case(c, "lint-utf16", ("lint", "{inputs}/utf16.json")),
        Case(c, "lint-empty", ("lint", "{inputs}/empty.jsonl")), Case(c, "lint-array", ("lint", "{inputs}/array.json")),
        Case(c, "lint-deep", ("lint", "{inputs}/deep_array.json")),
        Case(c, "lint-toml-no-request", ("lint", "{inputs}/not_a_profile.toml")),
        Case(c, "lint-broken-toml", ("lint", "{inputs}/broken.toml")),
        Case(c, "lint-capture-types", ("lint", "{inputs}/capture_types.jsonl")),
        Case(c, "lint-capture-headers", ("lint", "{inputs}/capture_headers.jsonl")),
        Case(c, "lint-capture-none", ("lint", "{inputs}/capture_none.jsonl")),
        Case(c, "lint-index-out-of-range", ("lint", "{capture}", "--index", "999")),
        Case(c, "lint-unknown-profile", ("lint", "no-such-profile")),
        Case(c, "lint-traversal", ("lint", "../../../etc/passwd")),
        Case(c, "diff-unknown-profiles", ("diff", "nope-a", "nope-b")),
        Case(c, "diff-binary", ("diff", "{inputs}/binary.bin", "sdk-minimal")),
        Case(c, "diff-capture-types", ("diff", "{inputs}/capture_types.jsonl", "sdk-minimal")),
        Case(c, "diff-capture-headers", ("diff", "sdk-minimal", "{inputs}/capture_headers.jsonl")),
        Case(c, "diff-empty-capture", ("diff", "{inputs}/empty.jsonl", "sdk-minimal")),
        Case(c, "diff-toml-no-request", ("diff", "{inputs}/not_a_profile.toml", "sdk-minimal")),
        Case(c, "diff-dir", ("diff", "{inputs}/adir.toml", "sdk-minimal")),
        Case(c, "capture-no-upstream", ("capture",)),
        Case(c, "capture-foreign-upstream", ("capture", "--upstream", "http://evil.example")),
        Case(c, "capture-ftp-upstream", ("capture", "--upstream", "ftp://127.0.0.1/")),
        Case(c, "capture-not-a-url", ("capture", "--upstream", "not a url")),
        Case(c, "capture-to-profile-without-file", ("capture", "--to-profile", "x")),
        Case(c, "capture-to-profile-binary", ("capture", "--to-profile", "x", "{inputs}/binary.bin", "--profiles-dir",
                                              "{out}")),
        Case(c, "capture-to-profile-types", ("capture", "--to-profile", "x", "{inputs}/capture_types.jsonl",
                                             "--profiles-dir", "{out}")),
        Case(c, "capture-to-profile-missing", ("capture", "--to-profile", "x", "{inputs}/nope.jsonl")),
        Case(c, "matrix-unknown-profile", ("matrix", "--dry-run", "--profile", "nope")),
        Case(c, "matrix-traversal-profile", ("matrix", "--dry-run", "--profile", "../../etc/passwd")),
        Case(c, "matrix-unknown-factor", ("matrix", "--dry-run", "--factors", "nope")),
        Case(c, "matrix-only-commas", ("matrix", "--dry-run", "--factors", ",,,")),
        Case(c, "matrix-live-no-opt-in", ("matrix", "--live", "--factors", "auth")),
        Case(c, "matrix-live-no-budget", ("matrix", "--live", "--factors", "auth"),
             env=(("LANELAB_LIVE_OPT_IN", "1"),)),
        Case(c, "matrix-unknown-policy", ("matrix", "--factors", "auth", "--policy", "nope", "--no-progress")),
        Case(c, "bisect-unknown-requests", ("bisect", "--pass", "nope", "--fail", "nope2")),
        Case(c, "bisect-binary-capture", ("bisect", "--pass", "sdk-minimal", "--fail", "{inputs}/binary.bin")),
        Case(c, "bisect-live-no-opt-in", ("bisect", *MINIMAL["bisect"]), env=(("LANELAB_MODE", "live"),)),
        Case(c, "bisect-unknown-policy", ("bisect", *MINIMAL["bisect"], "--policy", "nope")),
        Case(c, "login-unknown-endpoints", ("login", "--endpoints", "nope")),
        Case(c, "login-unknown-variant", ("login", "--variant", "nope")),
        Case(c, "login-bad-label", ("login", "--label", "../bad label")),
        Case(c, "login-empty-label", ("login", "--label", " ")),
        Case(c, "login-live-no-opt-in", ("login",), env=(("LANELAB_MODE", "live"),)),
        Case(c, "login-auto-live", ("login", "--auto"), env=(("LANELAB_MODE", "live"), ("LANELAB_LIVE_OPT_IN", "1"))),
        Case(c, "login-no-paste", ("login",), env=(("LANELAB_BASE_URL", "{sim}"),), sim=True),
        Case(c, "login-garbage-pastes", ("login", "--tries", "2"), env=(("LANELAB_BASE_URL", "{sim}"),), sim=True,
             stdin="nonsense\n" + ENV_TOKEN + "#x\n"),
        Case(c, "sim-unknown-policy", ("sim", "--policy", "nope")),
        Case(c, "sim-bad-faults", ("sim", "--faults", "explode=everything%%%")),
        Case(c, "lab-unknown-policy", ("lab", "--policy", "nope", "--no-browser")),
        Case(c, "demo-unknown-policy", ("demo", "--policy", "nope", "--out", "{out}/demo")),
        Case(c, "audit-empty", ("audit", "--dir", "{inputs}/noaudit")),
        Case(c, "audit-file", ("audit", "--dir", "{afile}")),
    ]


def all_cases() -> list[Case]:
    tmp = Path(tempfile.mkdtemp(prefix="lanelab-badinput-"))
    return [*argument_cases(), *account_cases(), *settings_cases(), *unreachable_cases(), *disk_cases(),
            *data_file_cases(), *run_file_cases(tmp / "runs"), *command_cases()]


CASES = all_cases()


def test_there_are_at_least_300_bad_inputs_and_every_command_is_covered():
    assert len(CASES) >= 300, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    covered = {c.argv[0] for c in CASES}
    assert set(_subparsers()) <= covered, f"commands without a bad input: {set(_subparsers()) - covered}"
    assert {rel for rel in DATA_FILES} >= {"factors.toml", "outcomes.toml", "lanes.toml", "usage_fields.toml",
                                           "oauth.toml", "diff_annotations.toml", "triggers.toml",
                                           "version_gate.toml", "profiles/sdk-minimal.toml"}


def _renders_a_report(case: Case) -> bool:
    """Cases that get as far as building a report (its figures and timeline): seconds each, so in the full run only."""
    return case.argv[0] == "report" and case.category in ("run files", "disk")


GENERIC_CORRUPTIONS = frozenset(_generic_corruptions("factors.toml"))
HAND_WRITTEN = {"commands", "sim --account"}


def _subject_and_kind(case: Case) -> tuple[str, str]:
    """What a generated case exercises: its subject (the command; for a data file, the file and whether the damage
    is generic or specific to its schema) and its kind of bad input (the same damage or value given to another
    subject is the same kind). Hand-written cases are each their own subject and kind."""
    if case.category in HAND_WRITTEN:
        return case.id, case.id
    if case.data is not None:
        rel = case.data[0]
        damage = case.name[len(rel) + 1:]
        return (f"{rel} generic", damage) if damage in GENERIC_CORRUPTIONS else (f"{rel} specific", "specific")
    subject = case.argv[0]
    kind = case.name[len(subject):].lstrip("-") if case.name.startswith(subject) else case.name
    if case.category == "arguments" and "=" in kind:  # the same bad value for another option: the same kind
        kind = kind.split("=", 1)[1]
    return subject, kind


def _fast_loop_share(cases: list[Case]) -> set[str]:
    """The ids of the cases the fast loop runs: every hand-written case, and of the generated ones the first of each
    category for every subject and for every kind of bad input (each command, each data file's generic and
    schema-specific damage, each corruption, bad value and setting once). The full run (``make test``, ``make
    audit``) runs every case."""
    seen: set[tuple[str, str, str]] = set()
    share = set()
    for case in cases:
        if _renders_a_report(case):
            continue
        subject, kind = _subject_and_kind(case)
        keys = {(case.category, "subject", subject), (case.category, "kind", kind)}
        if not keys <= seen:
            share.add(case.id)
            seen |= keys
    return share


FAST_LOOP_SHARE = _fast_loop_share(CASES)


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    return [] if case.id in FAST_LOOP_SHARE else [pytest.mark.slow]


# The same inputs again under proxy variables (nothing may reach the proxy) are in the full run, not the fast loop.
@pytest.mark.parametrize("proxy", [pytest.param(False, id="no-proxy-env"),
                                   pytest.param(True, id="proxy-env", marks=pytest.mark.slow)])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_bad_input_is_one_line_and_loses_nothing(case: Case, proxy: bool, world: World, request: pytest.FixtureRequest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if case.sim or any("{sim}" in v for _, v in case.env) or "{sim}" in " ".join(case.argv):
        world.sim_url = request.getfixturevalue("sim").base_url
    world.listener.connections.clear()
    try:
        result = run_cli(world, case, proxy, monkeypatch)
    except WouldRun as exc:
        pytest.fail(f"{case.id}: the bad input was not refused: {exc}")
    if not proxy:
        TALLY[case.category] += 1
    LEAK_RUNS[case.category] += 1
    check(case, result, world, proxy)
    if case.category == "run files" and case.expect == 0:
        warnings = [line for line in result.err.splitlines() if line.strip()]
        assert warnings and all("skipped" in w or "run id" in w for w in warnings), warnings


# ------------------------------------------------------------------------------------------ resuming a damaged run
RESUME_DAMAGE = {"cell_id-list": _setter(("cell_id",), [1]), "outcome-table": _setter(("outcome",), {"x": 1}),
                 "observation-list": _setter(("observation",), [1]), "levels-string": _setter(("levels",), "x")}


# Each runs a matrix twice: the fast loop damages one record kind, the full run every one.
@pytest.mark.parametrize("damage", [pytest.param(d, marks=[] if d == "cell_id-list" else [pytest.mark.slow])
                                    for d in sorted(RESUME_DAMAGE)])
def test_a_resumed_run_over_damaged_records_loses_nothing(damage: str, world: World, sim: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = world.out_dir()
    env = (("LANELAB_BASE_URL", sim.base_url), ("LANELAB_OUT", str(out)))
    argv = ("matrix", "--factors", "auth", "--no-progress", "--run-id", "resume-me")
    first = run_cli(world, Case("resume", f"first-{damage}", argv, env=env, expect=0), False, monkeypatch)
    assert first.rc == 0, first.err
    path = out / "runs" / "resume-me.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if json.loads(line).get("record") == "cell")
    record = json.loads(lines[index])
    RESUME_DAMAGE[damage](record)
    lines[index] = json.dumps(record)
    damaged = ("\n".join(lines) + "\n").encode()
    path.write_bytes(damaged)
    TALLY["resume"] += 1
    LEAK_RUNS["resume"] += 1
    again = run_cli(world, Case("resume", f"again-{damage}", argv, env=env, expect=0), False, monkeypatch)
    check(Case("resume", damage, argv, expect=0), again, world, False)
    assert path.read_bytes().startswith(damaged), "the damaged run file must only grow (append-only)"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[len(lines):]]
    assert any(r.get("record") == "cell" for r in records), "the damaged cell must be sent again"


# ------------------------------------------------------------------------------------- the capture proxy's targets
def _raw_exchange(port: int, head: bytes, body: bytes = b"{}") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        if head.startswith(b"PRI"):
            s.sendall(head + b"\r\n\r\nSM\r\n\r\n")
        else:
            s.sendall(head + b"\r\nHost: x\r\nAuthorization: Bearer " + ENV_TOKEN.encode()
                      + b"\r\nx-api-key: " + STORE_ACCESS.encode() + b"\r\nContent-Type: application/json\r\n"
                      + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def proxy_targets(listener: int) -> dict[str, bytes]:
    return {
        "absolute-http": b"POST http://other.example/v1/messages HTTP/1.1",
        "absolute-https": b"POST https://api.anthropic.com.evil.example/v1/messages HTTP/1.1",
        "absolute-listener": f"POST http://127.0.0.1:{listener}/v1/messages HTTP/1.1".encode(),
        "userinfo-listener": f"POST @127.0.0.1:{listener}/v1/messages HTTP/1.1".encode(),
        "userinfo-decimal-ip": f"POST @2130706433:{listener}/v1/messages HTTP/1.1".encode(),
        "asterisk": b"OPTIONS * HTTP/1.1",
        "connect": b"CONNECT other.example:443 HTTP/1.1",
        "connect-listener": f"CONNECT 127.0.0.1:{listener} HTTP/1.1".encode(),
        "http2-preface": b"PRI * HTTP/2.0",
        "dot-suffix": b"POST .evil.example/v1/messages HTTP/1.1",
        "relative": b"POST v1/messages HTTP/1.1",
        "port-suffix": f"POST :{listener}/v1/messages HTTP/1.1".encode(),
        "backslash": b"POST /\\evil.example/v1/messages HTTP/1.1",
        "get-absolute": f"GET http://127.0.0.1:{listener}/ HTTP/1.1".encode(),
    }


# The same inputs again under proxy variables (nothing may reach the proxy) are in the full run, not the fast loop.
@pytest.mark.parametrize("proxy", [pytest.param(False, id="no-proxy-env"),
                                   pytest.param(True, id="proxy-env", marks=pytest.mark.slow)])
def test_the_capture_proxy_answers_odd_targets_with_400_and_records_them(proxy: bool, world: World,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from lanelab.sim.server import running_simulator
    from lanelab.walkthrough.capture import running_capture

    if proxy:
        for var in PROXY_VARS:
            monkeypatch.setenv(var, world.listener.url)
    world.listener.connections.clear()
    out = world.out_dir() / "capture.jsonl"
    targets = proxy_targets(world.listener.port)
    with running_simulator() as sim, running_capture(sim.base_url, out) as capture:
        port = int(capture.base_url.rsplit(":", 1)[1])
        sent_before = len(sim.state.log)
        for name, head in targets.items():
            answer = _raw_exchange(port, head)
            TALLY["capture proxy targets"] += 0 if proxy else 1
            LEAK_RUNS["capture proxy targets"] += 1
            status_line = answer.split(b"\r\n", 1)[0]
            assert status_line.startswith(b"HTTP/1.1 400"), f"{name}: {status_line!r}"
            body = answer.split(b"\r\n\r\n", 1)[1]
            assert b"Traceback" not in answer and b"origin-form" in body, f"{name}: {body[:300]!r}"
        ok = _raw_exchange(port, b"POST /v1/messages HTTP/1.1")  # a positive control: origin-form is forwarded
        assert ok.split(b"\r\n", 1)[0] != b"HTTP/1.1 400 Bad Request"
        time.sleep(0.2)
        exchanges = capture.exchanges()
        assert len(sim.state.log) - sent_before == 1, "only the origin-form request may reach the upstream"
    refused = [e for e in exchanges if e["response"]["status"] == 400]
    assert len(refused) == len(targets), [e["request"]["path"] for e in exchanges]
    assert all("nothing was forwarded" in (e.get("error") or "") for e in refused)
    assert not world.listener.connections, world.listener.connections
    text = out.read_text(encoding="utf-8")
    assert not [w for w in WINDOWS if w in text], "a canary reached the capture file"


# --------------------------------------------------------------------- pipes, Ctrl-C and bugs: still no traceback
PIPED = [("diff", "sdk-minimal", "hermes-0.14.0"), ("lint", "hermes-0.14.0"), ("--help",),
         ("matrix", "--dry-run", "--factors", "auth", "--show-requests"), ("creds",), ("diff", "--help")]
#: A process each (about a second): the fast loop pipes one command's output, the full run every one.
PIPED_FAST = {("diff", "sdk-minimal", "hermes-0.14.0")}


@pytest.mark.parametrize("argv", [pytest.param(a, id=" ".join(a), marks=[] if a in PIPED_FAST else [pytest.mark.slow])
                                  for a in PIPED])
def test_output_into_a_closed_pipe_is_silent(argv: tuple[str, ...], world: World, tmp_path: Path) -> None:
    """``python -m lanelab … | head -1`` where the reader has gone before the first write: no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    env.update(PYTHONPATH=str(REPO / "lib"), LANELAB_HOME=str(world.home), LANELAB_OUT=str(tmp_path))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    proc = subprocess.run([sys.executable, "-m", "lanelab", *argv], stdout=write_end, stderr=subprocess.PIPE,
                          env=env, timeout=120, check=False, cwd=REPO)
    os.close(write_end)
    TALLY["closed pipe"] += 1
    err = proc.stderr.decode(errors="replace")
    if "Traceback" in err:
        TRACEBACKS["closed pipe"] += 1
    assert "Traceback" not in err and "Exception ignored" not in err, err
    expected = {cli.EXIT_PIPE_CLOSED, 0} if "--help" in argv else {cli.EXIT_PIPE_CLOSED}  # argparse's help is quiet
    assert proc.returncode in expected and not err.strip(), (proc.returncode, err)


@pytest.mark.parametrize("command", sorted(SETTINGS_COMMANDS))
def test_ctrl_c_is_one_line_and_exit_130(command: str, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from lanelab import config

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(config.Settings, "from_env", classmethod(interrupted))
    case = Case("Ctrl-C", command, (command, *SETTINGS_COMMANDS[command]), expect=cli.EXIT_INTERRUPTED)
    result = run_cli(world, case, False, monkeypatch)
    TALLY["Ctrl-C"] += 1
    check(case, result, world, False)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines == [f"lanelab {command}: interrupted; nothing already written was lost."], lines


@pytest.mark.slow  # a process of the kit; the fast loop keeps Ctrl-C in every command, in-process, above
def test_sigint_to_a_running_simulator_stops_it_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    env.update(PYTHONPATH=str(REPO / "lib"), LANELAB_OUT=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "sim"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith(b"http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    TALLY["Ctrl-C"] += 1
    assert b"Traceback" not in err, err.decode(errors="replace")
    assert proc.returncode in (0, cli.EXIT_INTERRUPTED, -signal.SIGINT), proc.returncode


@pytest.mark.parametrize("out_usable", [True, False], ids=["bug-file-in-out", "bug-file-in-tmp"])
def test_a_bug_is_one_line_naming_a_redacted_traceback_file(out_usable: bool, world: World,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from lanelab.wire import diff

    secret = "Hs8Kd2Lq7Wz4Xm9Pv3Rt6Bn1Cj5Gf0Ye"
    redact.register_secret(secret)  # a token the kit handled earlier in the process

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"unexpected state while holding {secret}")

    monkeypatch.setattr(diff, "diff_specs", broken)
    env = () if out_usable else (("LANELAB_OUT", "{afile}"),)
    case = Case("bug", "diff", ("diff", "sdk-minimal", "hermes-0.14.0"), env=env, expect=cli.EXIT_BUG)
    result = run_cli(world, case, False, monkeypatch)
    TALLY["bug"] += 1
    check(case, result, world, False)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "this is a bug in lanelab" in lines[0] and "RuntimeError" in lines[0], lines
    path = Path(lines[0].split("the redacted traceback is in ", 1)[1].split(". Please", 1)[0])
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (path.parent == _bug_dir()) is not out_usable
    report = path.read_text(encoding="utf-8")
    assert "Traceback" in report and "RuntimeError" in report and "diff sdk-minimal hermes-0.14.0" in report
    assert secret[4:12] not in report and secret not in report
