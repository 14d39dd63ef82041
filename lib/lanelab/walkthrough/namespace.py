"""Anthropic's real host names on this machine's loopback, with a trusted test certificate, and nothing leaving it.

Three things need a client to reach ``https://api.anthropic.com`` (and the OAuth hosts) while talking to a server of
the kit: the offline rehearsal of live mode (``make test``), ``watch -- CMD`` (a user's client whose request shape
depends on the host name) and capturing real clients (``make profiles``). They all use this module:

- :func:`can_use_namespaces` says whether a private network namespace can be made here, and if not, what is missing.
- :func:`command` wraps an argv so that it runs in a **private network namespace** (``unshare --net --mount``) whose
  only interface is its own loopback, where a bind-mounted ``/etc/hosts`` maps the given host names to 127.0.0.1 and
  name resolution uses that file only. The namespace has no route anywhere: nothing in it can reach another
  machine, and the host's ``/etc/hosts`` is untouched (the mount lives in the namespace's own mount table).
  :func:`run` is the same through :func:`subprocess.run`.
- The kit's own servers must listen *inside* the namespace (it has its own loopback). Either what runs there is a
  whole entry point (a script, ``python -m …``) that starts its server on port 443 and then the client (the
  rehearsal, a capture against the simulator), or :func:`start` binds the ports inside the namespace and hands the
  listening sockets back to this process, which serves them from here (``lanelab.serve.running_server(app,
  sock=…)``) while keeping this machine's network for its own upstream requests (``watch`` in front of the live
  API: the client is cut off, the proxy is not).
- :func:`test_ca` makes a throw-away CA and a server certificate for the host names, as PEM files in a private temp
  folder that is removed afterwards; the CA's private key is never written anywhere. :func:`trust_env` gives the
  environment that makes the kit (``LANELAB_CA_BUNDLE``), Node (``NODE_EXTRA_CA_CERTS``) and Python
  (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``) clients trust it.

Inside the namespace this module is also the bootstrap (``python -m lanelab.walkthrough.namespace --host NAME …
-- CMD …``, built by :func:`command`): it checks that it really is in fresh network and mount namespaces, brings
loopback up, mounts the hosts file, checks every name resolves to loopback only, then executes ``CMD``. It exits
125 with one line on standard error when any of that fails, 127 when ``CMD`` cannot be executed.

Example (a script that starts a TLS server on 443 and then a client)::

    with namespace.test_ca() as ca:
        env = {**namespace.trust_env(ca.ca_pem), "CERT": str(ca.cert_pem), "KEY": str(ca.key_pem)}
        done = namespace.run([sys.executable, "inside.py"], env=env, capture_output=True, text=True)
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import fcntl
import functools
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from lanelab.config import LIVE_API_BASE, LIVE_HOSTS, data_dir
from lanelab.errors import ServiceError

__all__ = ["API_HOST", "BOOTSTRAP_FAILED", "NamespaceUnavailable", "Started", "TestCA", "can_use_namespaces",
           "command", "hosts_file_text", "live_hosts", "main", "run", "start", "test_ca", "trust_env"]

#: The host name the API is served under (the certificate's name for :class:`lanelab.serve.TLS`).
API_HOST = LIVE_API_BASE.removeprefix("https://")
#: The bootstrap's exit status when it cannot set the namespace up (nothing of ``CMD`` ran).
BOOTSTRAP_FAILED = 125
#: How long the availability probe may take.
PROBE_TIMEOUT_S = 10
#: How long the test certificates are valid: long enough for any run, short enough to be useless afterwards.
CERT_LIFETIME = _dt.timedelta(days=2)

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_MS_BIND = 4096
#: Name-service caches answer from outside the namespace; their sockets are hidden inside it.
_NSCD_DIRS = ("/run/nscd", "/var/run/nscd")


class NamespaceUnavailable(ServiceError):
    """A private network namespace cannot be made here (not root, ``unshare`` missing, or the kernel refuses)."""


# ---------------------------------------------------------------------------------------------------------------
# Which names, and whether a namespace can be made


def live_hosts() -> frozenset[str]:
    """The live host names: :data:`lanelab.config.LIVE_HOSTS` and every host of a live endpoint set in
    ``data/oauth.toml`` (authorize, token and callback URLs). Raises ``EndpointSetError`` for a bad data file."""
    from urllib.parse import urlsplit

    from lanelab.auth.oauth import load_endpoint_sets

    hosts = set(LIVE_HOSTS)
    for endpoints in load_endpoint_sets(data_dir() / "oauth.toml").values():
        if endpoints.relative:
            continue
        for url in (endpoints.authorize_url, endpoints.redirect_uri, *endpoints.token_urls):
            host = urlsplit(url).hostname
            if host:
                hosts.add(host.lower())
    return frozenset(hosts)


@functools.lru_cache(maxsize=1)
def can_use_namespaces() -> tuple[bool, str]:
    """``(True, "")`` when a private network namespace can be made here, else ``(False, reason)``.

    Checks, in order: running as root, ``unshare`` on PATH, and a probe ``unshare --net --mount true``. The reason
    names what is missing and what to do. The answer is cached for the process.
    """
    if os.geteuid() != 0:
        return False, ("not running as root (a private network namespace needs root); run as root, as CI does, or "
                       "point the client at the kit's base URL instead")
    if shutil.which("unshare") is None:
        return False, "the 'unshare' command is missing (Debian package util-linux)"
    try:
        probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, text=True,
                               timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"'unshare --net --mount true' could not run ({type(exc).__name__})"
    if probe.returncode != 0:
        detail = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        return False, f"'unshare --net --mount true' failed here ({detail}); the kernel or container forbids it"
    return True, ""


def _check_hosts(hosts: Iterable[str]) -> list[str]:
    names = sorted({h.strip().lower() for h in hosts if h and h.strip()})
    if not names:
        raise ValueError("No host names given for the namespace's hosts file.")
    for name in names:
        if any(c.isspace() or c == "#" for c in name) or name.startswith("-"):
            raise ValueError(f"{name!r} is not a host name.")
    return names


def hosts_file_text(hosts: Iterable[str], ipv6: bool = False) -> str:
    """The namespace's ``/etc/hosts``: ``localhost`` and each of ``hosts`` on 127.0.0.1 (and ``::1`` with ``ipv6``).

    ``::1`` is off by default because the kit's servers listen on 127.0.0.1 only, and resolvers list ``::1``
    first: a client that tries only the first address (Node before 20) would find nothing there.
    """
    names = _check_hosts(hosts)
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"127.0.0.1 {name}" for name in names]
    if ipv6:
        lines += [f"::1 {name}" for name in names]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Outside: the command that runs something inside


def _ns_id(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def command(argv: Sequence[str], hosts: Iterable[str] | None = None, *, ipv6: bool = False,
            python: str | None = None, listen: Sequence[int] = (), send_fd: int | None = None) -> list[str]:
    """The argv that runs ``argv`` in a fresh private network namespace where ``hosts`` (default
    :func:`live_hosts`) resolve to loopback. Hand it to :class:`subprocess.Popen` (with the environment ``argv``
    needs: it is passed through unchanged) when the command runs for long, or use :func:`run`. ``listen`` and
    ``send_fd`` are :func:`start`'s (ports to bind inside, and the inherited socket to send them back through).

    Raises :class:`NamespaceUnavailable` (with the reason) where namespaces cannot be made, ``ValueError`` for an
    empty ``argv`` or a bad host name.
    """
    if not argv:
        raise ValueError("No command to run in the namespace.")
    ports = _check_ports(listen)
    if ports and send_fd is None:
        raise ValueError("Ports to listen on need a socket to send them back through (use start()).")
    names = _check_hosts(live_hosts() if hosts is None else hosts)
    ok, reason = can_use_namespaces()
    if not ok:
        raise NamespaceUnavailable(f"Cannot make a private network namespace: {reason}.")
    lib = str(Path(__file__).resolve().parents[2])
    # -I: the bootstrap ignores PYTHON* variables and the working directory (they are passed on to argv unchanged);
    # -c with an explicit path: the bootstrap finds this package without touching argv's PYTHONPATH.
    boot = (f"import sys; sys.path.insert(0, {lib!r}); "
            "from lanelab.walkthrough.namespace import main; sys.exit(main())")
    outer = f"net:{_ns_id('net')},mnt:{_ns_id('mnt')}"
    return ["unshare", "--net", "--mount", "--propagation", "private", "--",
            python or sys.executable, "-I", "-c", boot, "--outer", outer, *(["--ipv6"] if ipv6 else []),
            *[f"--host={name}" for name in names], *[f"--listen={port}" for port in ports],
            *([f"--send-fd={send_fd}"] if ports else []), "--", *argv]


def _check_ports(ports: Iterable[int]) -> list[int]:
    checked = []
    for port in ports:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
            raise ValueError(f"Port {port!r} is not a TCP port (1 to 65535).")
        checked.append(port)
    if len(set(checked)) != len(checked):
        raise ValueError(f"Ports {checked} repeat.")
    return checked


def _environment(env: Mapping[str, str | None] | None) -> dict[str, str]:
    full = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def run(argv: Sequence[str], hosts: Iterable[str] | None = None, *, env: Mapping[str, str | None] | None = None,
        ipv6: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` to completion in a private network namespace (see :func:`command`); its completed process.

    ``env`` adds to (a value of ``None``: removes from) this process's environment. Other keyword arguments go to
    :func:`subprocess.run` (``capture_output``, ``text``, ``timeout``, ``cwd``, ``input`` …). An exit status of
    :data:`BOOTSTRAP_FAILED` means the namespace could not be set up (its reason is the last line of stderr).
    Raises :class:`NamespaceUnavailable` where namespaces cannot be made.
    """
    check = bool(kwargs.pop("check", False))
    return subprocess.run(command(argv, hosts, ipv6=ipv6), env=_environment(env), check=check, **kwargs)


@dataclass
class Started:
    """A command running in a private network namespace, and the sockets listening inside it, by port.

    Serve each socket from this process (``lanelab.serve.running_server(app, sock=started.listeners[443],
    tls=…)``): connections the command makes to ``127.0.0.1:PORT`` (so to every mapped host name) inside the
    namespace arrive here, while this process keeps its own network. Used as a context manager, it stops the
    command (SIGTERM, then SIGKILL) if it is still running and closes the sockets on exit.
    """

    process: subprocess.Popen[Any]
    listeners: dict[int, socket.socket]

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the command; its exit status."""
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for sock in self.listeners.values():
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(argv: Sequence[str], hosts: Iterable[str] | None = None, *, listen: Sequence[int] = (443,),
          env: Mapping[str, str | None] | None = None, ipv6: bool = False, timeout: float = 30.0,
          python: str | None = None, **popen_kwargs: Any) -> Started:
    """Start ``argv`` in a private network namespace (see :func:`command`) after binding ``listen`` ports on the
    namespace's 127.0.0.1; returns at once with the process and those listening sockets.

    The command may connect before anything serves the sockets: its connections wait in the listen backlog.
    ``env`` is as for :func:`run`; other keyword arguments go to :class:`subprocess.Popen` (``stdout``, ``cwd`` …).
    Raises ``ValueError`` for a bad port or host name, and :class:`NamespaceUnavailable` where namespaces cannot be
    made or the namespace could not be set up (the bootstrap's reason is then on the command's standard error).
    """
    ports = _check_ports(listen)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        argv_ns = command(argv, hosts, ipv6=ipv6, python=python, listen=ports, send_fd=theirs.fileno())
        process = subprocess.Popen(argv_ns, env=_environment(env), pass_fds=(theirs.fileno(),), **popen_kwargs)
        theirs.close()
        listeners: dict[int, socket.socket] = {}
        if ports:
            ours.settimeout(timeout)
            try:
                message, fds, _, _ = socket.recv_fds(ours, 256, len(ports))
            except (OSError, TimeoutError):
                message, fds = b"", []
            got = [int(p) for p in message.decode("ascii", errors="replace").split(",") if p.isdigit()]
            if got != ports or len(fds) != len(ports):
                for fd in fds:
                    os.close(fd)
                if process.poll() is None:
                    process.kill()
                status = process.wait()
                raise NamespaceUnavailable(f"The private network namespace could not be set up (exit {status}).",
                                           "Its reason is on the command's standard error.")
            listeners = {port: socket.socket(fileno=fd) for port, fd in zip(ports, fds, strict=True)}
        return Started(process, listeners)
    finally:
        ours.close()
        theirs.close()


# ---------------------------------------------------------------------------------------------------------------
# The test CA


@dataclass(frozen=True)
class TestCA:
    """PEM files of a throw-away CA and a server certificate for :attr:`hosts` (the CA's key is not among them)."""

    __test__ = False  # not a pytest test class

    folder: Path
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    hosts: tuple[str, ...]

    def tls(self, hostname: str = API_HOST) -> Any:
        """A :class:`lanelab.serve.TLS` serving this certificate, its base URL under ``hostname``."""
        from lanelab.serve import TLS

        if hostname not in self.hosts:
            raise ValueError(f"The test certificate is not for {hostname!r}; it covers {', '.join(self.hosts)}.")
        return TLS(self.cert_pem, self.key_pem, hostname)


def _issue(folder: Path, names: list[str]) -> TestCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _dt.datetime.now(_dt.UTC)
    start, end = now - _dt.timedelta(hours=1), now + CERT_LIFETIME
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lanelab"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "lanelab offline rehearsal test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(ca_ski, critical=False)
               .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {"ca.pem": ca_cert.public_bytes(pem), "cert.pem": leaf.public_bytes(pem),
             "key.pem": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    for name, blob in paths.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
    return TestCA(folder=folder, ca_pem=folder / "ca.pem", cert_pem=folder / "cert.pem", key_pem=folder / "key.pem",
                  hosts=tuple(names))


@contextmanager
def test_ca(hosts: Iterable[str] | None = None) -> Iterator[TestCA]:
    """A fresh test CA and a server certificate for ``hosts`` (default :func:`live_hosts`), for the ``with`` block.

    The PEM files live in a private temp folder (mode 0700) that is removed on exit; the CA's private key exists
    only in memory while the certificates are made, so nothing else can ever be signed by this CA.
    """
    names = _check_hosts(live_hosts() if hosts is None else hosts)
    if API_HOST in names:  # the API host first: it is the certificate's common name
        names.remove(API_HOST)
        names.insert(0, API_HOST)
    folder = Path(tempfile.mkdtemp(prefix="lanelab-ca-"))
    try:
        yield _issue(folder, names)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


test_ca.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def trust_env(ca_pem: str | Path, *, kit: bool = True) -> dict[str, str]:
    """Environment additions that make clients trust the test CA in ``ca_pem``.

    ``NODE_EXTRA_CA_CERTS`` (Node clients: added to Node's own store), ``SSL_CERT_FILE`` (Python's ssl default,
    httpx and the anthropic SDK), ``REQUESTS_CA_BUNDLE`` (requests), and with ``kit`` the kit's own setting
    ``LANELAB_CA_BUNDLE``. The Python variables *replace* the system store, which is what the namespace wants:
    only the test CA is trusted there.
    """
    path = str(Path(ca_pem).resolve())
    env = {"NODE_EXTRA_CA_CERTS": path, "SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path}
    if kit:
        env["LANELAB_CA_BUNDLE"] = path
    return env


# ---------------------------------------------------------------------------------------------------------------
# Inside: the bootstrap


class _SetupFailed(Exception):
    pass


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        name = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, name)[:18])[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None) != 0:
        err = ctypes.get_errno()
        raise _SetupFailed(f"cannot mount {source} on {target}: {os.strerror(err)}")


def _mount_file(text: str, target: str) -> None:
    """Bind-mount a file holding ``text`` over ``target``; the source is unlinked at once (the mount keeps it)."""
    folder = tempfile.mkdtemp(prefix="lanelab-ns-")
    try:
        path = os.path.join(folder, "file")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o644)
        _mount(path, target, None, _MS_BIND)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _files_only_nsswitch() -> str | None:
    """``/etc/nsswitch.conf`` with host lookups from files only, or None when there is no such file."""
    try:
        lines = Path("/etc/nsswitch.conf").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    kept = [line for line in lines if not line.strip().startswith(("hosts:", "hosts "))]
    return "\n".join([*kept, "hosts: files"]) + "\n"


def _isolate(names: list[str], outer: str, ipv6: bool) -> None:
    """Inside ``unshare``: refuse unless in fresh namespaces; loopback up; hosts mapped; resolution checked."""
    expected = dict(part.split(":", 1) for part in outer.split(",") if ":" in part)
    for kind in ("net", "mnt"):
        if kind not in expected or _ns_id(kind) == expected[kind]:
            raise _SetupFailed(f"not in a fresh {kind} namespace (run through lanelab.walkthrough.namespace.command)")
    others = [name for _, name in socket.if_nameindex() if name != "lo"]
    if others:
        raise _SetupFailed(f"the network namespace has interfaces besides loopback ({', '.join(others)})")
    _loopback_up()
    _mount_file(hosts_file_text(names, ipv6=ipv6), "/etc/hosts")
    nsswitch = _files_only_nsswitch()
    if nsswitch is not None:
        _mount_file(nsswitch, "/etc/nsswitch.conf")
    for folder in _NSCD_DIRS:
        if os.path.isdir(folder) and not os.path.islink(folder):
            _mount("tmpfs", folder, "tmpfs", 0)
    for name in names:
        try:
            found = {str(info[4][0]) for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
        except socket.gaierror as exc:
            raise _SetupFailed(f"{name} does not resolve in the namespace ({exc.strerror})") from None
        if not found or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found):
            raise _SetupFailed(f"{name} resolves to {sorted(found)} in the namespace, not to loopback only")


def _hand_over(ports: list[int], send_fd: int) -> None:
    """Bind ``ports`` on the namespace's loopback and send the listening sockets back through ``send_fd``."""
    listeners = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
        with socket.socket(fileno=send_fd) as channel:
            socket.send_fds(channel, [",".join(map(str, ports)).encode()], [s.fileno() for s in listeners])
    finally:
        for sock in listeners:
            sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The bootstrap (see the module docstring); executes ``CMD`` or returns an exit status."""
    parser = argparse.ArgumentParser(prog="python -m lanelab.walkthrough.namespace",
                                     description="Set up a private network namespace and run CMD in it "
                                                 "(run through lanelab.walkthrough.namespace.command).")
    parser.add_argument("--host", action="append", default=[], help="a host name to map to loopback")
    parser.add_argument("--outer", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ipv6", action="store_true", help="map the names to ::1 as well")
    parser.add_argument("--listen", action="append", type=int, default=[], help=argparse.SUPPRESS)
    parser.add_argument("--send-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG …]")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("lanelab namespace: no command given (… -- CMD [ARG …]).", file=sys.stderr)
        return BOOTSTRAP_FAILED
    try:
        _isolate(_check_hosts(args.host), args.outer, args.ipv6)
        if args.listen:
            if args.send_fd is None:
                raise _SetupFailed("--listen needs --send-fd")
            _hand_over(_check_ports(args.listen), args.send_fd)
    except (_SetupFailed, OSError, ValueError) as exc:
        print(f"lanelab namespace: {exc}; nothing was run.", file=sys.stderr)
        return BOOTSTRAP_FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        print(f"lanelab namespace: cannot run {cmd[0]!r}: {exc.strerror}.", file=sys.stderr)
        return 127
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
