"""errors.py's docstring lists the whole UserError hierarchy: every subclass the kit defines, under its parent, with
the module it lives in."""

from __future__ import annotations

import importlib
import pkgutil
import re

import lanelab
from lanelab import errors
from lanelab.errors import UserError


def _all_user_errors() -> list[type]:
    for info in pkgutil.walk_packages(lanelab.__path__, "lanelab."):
        if info.name != "lanelab.__main__":  # importing it runs the CLI
            importlib.import_module(info.name)
    seen, todo = [], [UserError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("lanelab.") and sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return seen


def _tree_lines() -> list[str]:
    doc = errors.__doc__ or ""
    return [line for line in doc.splitlines() if re.match(r"^\s{4}[│├└ ]", line) or "UserError(Exception)" in line]


def test_every_user_error_is_listed_with_its_module() -> None:
    tree = "\n".join(_tree_lines())
    missing = []
    for cls in _all_user_errors():
        if not re.search(rf"\b{cls.__name__}\b", tree):
            missing.append(f"{cls.__name__} ({cls.__module__})")
            continue
        line = next(line for line in _tree_lines() if re.search(rf"\b{cls.__name__}\b", line))
        if cls.__module__ != "lanelab.errors":
            short = cls.__module__.rsplit(".", 1)[-1]
            assert cls.__module__ in line or f".{short}" in line, f"{cls.__name__}: its module is not named: {line}"
    assert not missing, "UserError subclasses missing from errors.py's docstring:\n" + "\n".join(sorted(missing))


def test_the_listed_parent_is_the_real_parent() -> None:
    """Each listed class sits under the branch of the base it really inherits (InputError, NotFound, …)."""
    branches = {"InputError": errors.InputError, "NotFound": errors.NotFound, "Refused": errors.Refused,
                "StateError": errors.StateError, "ServiceError": errors.ServiceError}
    current = None
    wrong = []
    by_name = {c.__name__: c for c in _all_user_errors()}
    for line in _tree_lines():
        top = re.match(r"^\s{4}[├└]── (\w+)\(", line)
        if top:
            current = branches.get(top.group(1))
            continue
        for name in re.findall(r"\b([A-Z]\w+)\b", line.split("(")[0]):
            cls = by_name.get(name)
            if cls is not None and current is not None and not issubclass(cls, current):
                wrong.append(f"{name} is listed under {current.__name__}")
    assert not wrong, "\n".join(wrong)


def test_every_user_error_inherits_a_matching_builtin() -> None:
    plain = [c.__name__ for c in _all_user_errors()
             if not any(issubclass(c, b) for b in (ValueError, LookupError, PermissionError, RuntimeError,
                                                   ConnectionError))]
    assert not plain, f"UserErrors without a matching builtin: {plain}"


def test_a_user_error_shows_as_one_line_in_a_notebook() -> None:
    """IPython renders ``_render_traceback_`` instead of the traceback: every UserError is its one redacted line."""
    secret = "sk-ant-oat01-" + "x" * 40
    for cls in [UserError, *_all_user_errors()]:
        try:
            err = cls(f"went wrong with {secret}.", "Do this next.")
        except TypeError:  # a subclass with its own constructor
            continue
        (line,) = err._render_traceback_()
        assert line.startswith(cls.__name__ + ": ") or cls.__name__ == "NotConfirmed", line
        assert secret not in line and "\n" not in line
        assert "Do this next." in line or cls.__init__ is not UserError.__init__  # own constructors take other data
