"""Reading the kit's data files (TOML under data/): one place for caching, for the "cannot read" errors and for
checking a file's shape against a schema.

Facts that change live in data, so every module reads some; they all read through here. A file is parsed (and
checked) once per version (keyed by its modification time), so editing a data file takes effect without restarting a
kernel.

Schemas
-------
A schema is a small declarative description of a document, checked when the file is read, so that a wrong type, a
missing table or a misspelt enum value is one line naming the file, the key and what was expected, instead of a
``KeyError`` or ``TypeError`` deep inside a loader. Loaders keep their own semantic checks (a rule names a known
class, a baseline is one of its levels …) and can rely on the types. The vocabulary::

    str, int, float, bool           a value of that type (``int`` refuses true/false; ``float`` takes integers too)
    None                            null (JSON documents; TOML has none)
    object                          anything
    [spec]                          a list whose items match ``spec`` (``[Table(...)]``: an array of tables)
    Table({"key": spec,             a table with these keys; "key?" is optional; keys not listed are allowed
           "other?": spec})         (``closed=True`` refuses them)
    MapOf(spec)                     a table whose keys the data chooses (``[factors.<name>]``), each value ``spec``
    OneOf("a", "b")                 one of these values (an enum)
    Either(str, [str])              any one of these specs
    Str(nonempty=True, regex=True)  a string, with extra checks (not blank; a valid regular expression)
    ListOf(spec, nonempty=True)     a list, with extra checks
    Int(minimum, maximum)           an integer in a range

``read_toml(path, what, error, schema=SPEC)`` checks while reading; :func:`validate` checks any parsed document
(JSON too) and :func:`problems` lists every mismatch without raising. Messages name the key path TOML-style
(``factors.auth.levels.bearer.kind``, ``rule[3].outcome``, indexes from 0) and the type found, never the value (a
data file may hold text that must not be echoed).

For data files read elsewhere (e.g. the simulator's policies and outcome templates), pass a schema the same way::

    POLICY = Table({"name": str, "rule?": [Table({"id": str, "when?": Table({}), "status?": int})]})
    doc = read_toml(path, "policy file", PolicyError, schema=POLICY)
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import os
import re
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from lanelab.errors import InputError, UserError

__all__ = ["DataFileError", "Either", "Int", "ListOf", "MapOf", "OneOf", "Schema", "Str", "Table", "describe",
           "key_path", "kind_of", "load_cached", "pinned", "problems", "read_toml", "validate"]


T = TypeVar("T")
_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[int, Any]] = {}
_resolved_paths: dict[str, str] = {}
#: The versions read inside :func:`pinned` (None outside it), by path as given and build key (or the build's code);
#: values are 1-tuples so that a build may return None.
_pins: ContextVar[dict[tuple[str, Any], tuple[Any]] | None] = ContextVar("lanelab_data_pins", default=None)


class DataFileError(InputError):
    """A data file is missing, unreadable, not valid TOML, or not the shape its schema describes."""

    hint = "Check the file (LANELAB_DATA points the kit at another data folder)."


# ------------------------------------------------------------------------------------------------------- schemas

#: Anything a schema position may hold: a type, a list of one spec, or a :class:`Schema`.
Spec = Any


class Schema:
    """Base of the schema vocabulary: ``check`` yields ``(key path, expected, found)`` for each mismatch; ``found``
    is :data:`MISSING` for a required key that is absent and :data:`UNKNOWN` for a key a closed table does not know."""

    def describe(self) -> str:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:  # pragma: no cover
        raise NotImplementedError


MISSING = "<missing>"
UNKNOWN = "<unknown>"

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", object: "anything",
               dict: "a table", list: "a list"}


def kind_of(value: Any) -> str:
    """The kind of ``value`` in TOML/JSON words (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, _dt.datetime):
        return "a date-time"
    if isinstance(value, _dt.date):
        return "a date"
    if isinstance(value, _dt.time):
        return "a time"
    return f"a {type(value).__name__}"


def _as_schema(spec: Spec) -> Schema:
    if isinstance(spec, Schema):
        return spec
    if spec is None:
        return _Null()
    if isinstance(spec, list):
        if len(spec) != 1:
            raise TypeError(f"a list spec holds exactly one item spec, not {spec!r}")
        return ListOf(spec[0])
    if isinstance(spec, type):
        return _Type(spec)
    raise TypeError(f"not a schema: {spec!r}")


def describe(spec: Spec) -> str:
    """What ``spec`` expects, in words ("a list of strings", "one of 'json', 'form'" …)."""
    return _as_schema(spec).describe()


class _Type(Schema):
    def __init__(self, kind: type):
        self.kind = kind

    def describe(self) -> str:
        return _TYPE_NAMES.get(self.kind, f"a {self.kind.__name__}")

    def accepts(self, value: Any) -> bool:
        kind = self.kind
        if kind is object:
            return True
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is dict:
            return isinstance(value, Mapping)
        if kind is list:
            return isinstance(value, (list, tuple))
        return isinstance(value, kind)

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not self.accepts(value):
            yield where, self.describe(), kind_of(value)


class _Null(Schema):
    """JSON's null (run records and other JSON documents; TOML has none)."""

    def describe(self) -> str:
        return "null"

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if value is not None:
            yield where, "null", kind_of(value)


class Int(Schema):
    """An integer (not true/false) from ``minimum`` to ``maximum`` (either may be None)."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer of at least {self.minimum}"
        return f"an integer of at most {self.maximum}" if self.maximum is not None else "an integer"

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not isinstance(value, int) or isinstance(value, bool):
            yield where, self.describe(), kind_of(value)
        elif (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            yield where, self.describe(), "an integer out of range"


class Str(Schema):
    """A string; ``nonempty``: not blank; ``regex``: compiles as a regular expression; ``pattern``: fully matches."""

    def __init__(self, nonempty: bool = False, regex: bool = False, pattern: str | None = None,
                 meaning: str | None = None):
        self.nonempty, self.regex = nonempty, regex
        self.pattern = re.compile(pattern) if pattern else None
        self.meaning = meaning

    def describe(self) -> str:
        if self.meaning:
            return self.meaning
        if self.regex:
            return "a valid regular expression"
        return "a non-empty string" if self.nonempty else "a string"

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not isinstance(value, str) or (self.nonempty and not value.strip()):
            yield where, self.describe(), kind_of(value)
        elif self.pattern is not None and not self.pattern.fullmatch(value):
            yield where, self.describe(), "a string of another form"
        elif self.regex:
            try:
                re.compile(value)
            except re.error as exc:
                yield where, self.describe(), f"an invalid pattern: {exc}"


class ListOf(Schema):
    """A list (a TOML array, or an array of tables) whose every item matches ``item``."""

    def __init__(self, item: Spec, nonempty: bool = False):
        self.item = _as_schema(item)
        self.nonempty = nonempty

    def describe(self) -> str:
        if isinstance(self.item, (Table, MapOf)):
            return "an array of tables" + (" (at least one)" if self.nonempty else "")
        inner = self.item.describe()
        for article in ("a ", "an "):
            if inner.startswith(article):
                inner = inner[len(article):] + "s"
                break
        return ("a non-empty list of " if self.nonempty else "a list of ") + inner

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not isinstance(value, (list, tuple)):
            yield where, self.describe(), kind_of(value)
            return
        if self.nonempty and not value:
            yield where, self.describe(), "an empty list"
        for i, item in enumerate(value):
            yield from self.item.check(item, f"{where}[{i}]")


_SHORT_WORD = re.compile(r"[A-Za-z0-9_.:/+ -]{1,24}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _key(where: str, key: Any) -> str:
    """``where.key`` as TOML would spell it (odd or long keys quoted and shortened)."""
    text = str(key)
    if not _BARE_KEY.fullmatch(text):
        text = '"' + (text[:24] + "…" if len(text) > 25 else text).replace('"', '\\"') + '"'
    return f"{where}.{text}" if where else text


class Table(Schema):
    """A table with known keys: ``{"key": spec}`` required, ``{"key?": spec}`` optional. Other keys are allowed
    unless ``closed``."""

    def __init__(self, fields: Mapping[str, Spec], closed: bool = False):
        self.fields = {k.rstrip("?"): (_as_schema(v), not k.endswith("?")) for k, v in fields.items()}
        self.closed = closed

    def describe(self) -> str:
        return "a table"

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not isinstance(value, Mapping):
            yield where or "the document", "a table", kind_of(value)
            return
        for name, (spec, required) in self.fields.items():
            if name in value:
                yield from spec.check(value[name], _key(where, name))
            elif required:
                yield _key(where, name), spec.describe(), MISSING
        if self.closed:
            for name in value:
                if str(name) not in self.fields:
                    yield _key(where, name), ", ".join(self.fields), UNKNOWN


class MapOf(Schema):
    """A table whose keys the data names (``[factors.<name>]``); every value matches ``values``."""

    def __init__(self, values: Spec, nonempty: bool = False):
        self.values = _as_schema(values)
        self.nonempty = nonempty

    def describe(self) -> str:
        return "a table" + (" with at least one entry" if self.nonempty else "")

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if not isinstance(value, Mapping):
            yield where or "the document", self.describe(), kind_of(value)
            return
        if self.nonempty and not value:
            yield where, self.describe(), "an empty table"
        for name, item in value.items():
            yield from self.values.check(item, _key(where, name))


class OneOf(Schema):
    """One of the given values (strings, numbers or booleans)."""

    def __init__(self, *values: Any):
        self.values = values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) if isinstance(v, str) else str(v).lower() for v in self.values)

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        ok = any(type(value) is type(v) and value == v for v in self.values)
        if not ok:
            found = kind_of(value)
            if isinstance(value, str) and value.strip():
                # a short word is shown (a typo is easier to spot); anything longer might be text not to echo
                found = repr(value) if _SHORT_WORD.fullmatch(value) else "another string"
            yield where, self.describe(), found


class Either(Schema):
    """Any one of the given specs (e.g. ``Either(str, [str])``)."""

    def __init__(self, *specs: Spec):
        self.specs = tuple(_as_schema(s) for s in specs)

    def describe(self) -> str:
        parts = [s.describe() for s in self.specs]
        return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]

    def check(self, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        results = [list(s.check(value, where)) for s in self.specs]
        if all(results):
            # a spec that took the value's outer type but found something wrong inside says more than the union
            inner = [r for r in results if r[0][0] != where]
            if inner:
                yield from inner[0]
            else:
                yield where, self.describe(), kind_of(value)


def key_path(*keys: Any) -> str:
    """Keys as one TOML-style path: ``key_path("factors", "max_tokens", "levels", "1")`` → ``factors.max_tokens.
    levels."1"`` (integers become indexes: ``rule[3]``)."""
    out = ""
    for k in keys:
        out = f"{out}[{k}]" if isinstance(k, int) and not isinstance(k, bool) else _key(out, k)
    return out


def problems(doc: Any, schema: Spec, limit: int = 50, at: str = "") -> list[str]:
    """Every mismatch between ``doc`` and ``schema`` (up to ``limit``), as ``"key must be …  (found …)"`` texts.

    ``at``: the key path of ``doc`` inside its file (see :func:`key_path`), prefixed to every key named."""
    out = []
    for where, expected, found in _as_schema(schema).check(doc, at):
        where = where or "the document"
        if found == MISSING:
            out.append(f"{where} is missing (it must be {expected})")
        elif found == UNKNOWN:
            out.append(f"{where} is not a key this file knows (known: {expected})")
        else:
            out.append(f"{where} must be {expected} (found {found})")
        if len(out) >= limit:
            break
    return out


def validate(doc: Any, schema: Spec, where: str = "data file", error: type[UserError] = DataFileError,
             hint: str | None = None, at: str = "") -> Any:
    """``doc`` when it matches ``schema``; else ``error`` (one line: ``where``, the first key, what it must be).

    ``where`` names the document, e.g. ``"The factor catalogue at /…/factors.toml"``; ``at`` the key path of ``doc``
    inside it when ``doc`` is a part (:func:`key_path`).
    """
    found = problems(doc, schema, limit=2, at=at)
    if found:
        more = " (and more problems after it)" if len(found) > 1 else ""
        raise error(f"{where}: {found[0]}{more}.", hint)
    return doc


# ------------------------------------------------------------------------------------------------------- reading

def _mtime(path: str, what: str, error: type[UserError]) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError as exc:
        raise error(f"Cannot read the {what} at {path} ({exc.strerror}).") from None


def _resolved(path: str) -> str:
    """``path`` resolved, remembered per spelling (resolving walks every component; this runs once per reading)."""
    found = _resolved_paths.get(path)
    if found is None:
        found = _resolved_paths[path] = str(Path(path).resolve())
    return found


def load_cached(path: Path, build: Callable[[Path], T], what: str = "data file",
                error: type[UserError] = DataFileError, key: str | None = None) -> T:
    """``build(path)``, computed once per version of the file (for parsed and validated objects).

    ``key`` tells apart several builds of one file that share a function name (default: the function's name).
    Each call costs one ``stat`` (an edited file is read again at once), a few microseconds: the wire layer asks
    for its tables once or twice per response. Inside :func:`pinned` the version first read is kept, with no
    ``stat``."""
    text = os.fspath(path)
    pins = _pins.get()
    if pins is not None:  # (a build is told apart by its code: a lambda is made anew on every call)
        pin = (text, key if key is not None else getattr(build, "__code__", build))
        kept = pins.get(pin)
        if kept is not None:
            return kept[0]
    if key is None:
        name = getattr(build, "__qualname__", None)
        key = f"{getattr(build, '__module__', '')}.{name}" if name else repr(build)
    mtime = _mtime(text, what, error)
    hit = _cache.get((_resolved(text), key))  # a dict read is atomic; the lock guards the writes
    if hit and hit[0] == mtime:
        value = hit[1]
    else:
        value = build(Path(text))
        with _lock:
            _cache[(_resolved(text), key)] = (mtime, value)
    if pins is not None:
        pins[pin] = (value,)
    return value


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Read each data file once for the length of the block: a run classifies every cell against one version of
    its tables, and spares the per-response ``stat``. Inside the block, :func:`load_cached` returns the version it
    first read there; a file edited meanwhile is read again after the block. The block covers code running in its
    context (the tasks it starts, threads given a copy of its context); a block inside another keeps the outer's
    versions."""
    if _pins.get() is not None:
        yield
        return
    token = _pins.set({})
    try:
        yield
    finally:
        _pins.reset(token)


def _encoding_problem(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 TOML text, in words (None when it is UTF-8)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 3 and (data[1:2] == b"\0" or data[0:1] == b"\0")):
        return "it looks like UTF-16 text; save it as UTF-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte {exc.start} is not UTF-8 (a binary file, or another encoding); save it as UTF-8 text"
    if b"\0" in data:
        return "it holds NUL bytes (a binary file?)"
    return None


def read_toml(path: Path, what: str = "data file", error: type[UserError] = DataFileError,
              schema: Spec | None = None) -> dict[str, Any]:
    """The parsed TOML document at ``path`` (a fresh copy: callers may change it), or ``error`` saying what is wrong.

    With ``schema``, the document is also checked against it (see the module docstring); a mismatch raises ``error``
    naming the file, the key and the expected type. Parsing and checking happen once per version of the file.
    """
    path = Path(path)

    def parse(p: Path) -> dict[str, Any]:
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise error(f"Cannot read the {what} at {p} ({exc.strerror or type(exc).__name__}).") from None
        problem = _encoding_problem(data)
        if problem:
            raise error(f"The {what} at {p} is not TOML text: {problem}.")
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise error(f"The {what} at {p} is not valid TOML: {exc}.") from None
        except RecursionError:
            raise error(f"The {what} at {p} is nested too deeply to read.") from None
        if schema is not None:
            validate(doc, schema, f"The {what} at {p}", error)
        return doc

    parse.__qualname__ = "read_toml"
    return copy.deepcopy(load_cached(path, parse, what, error, key=f"read_toml#{id(schema) if schema else ''}"))
