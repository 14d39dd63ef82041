"""Rendering the findings with Jinja2 templates (``lanelab/findings/templates/``), escaping automatic in both formats.

- HTML: autoescaping is on, so every value from run data is escaped unless the code marks it safe; the only values
  marked safe are built here from escaped parts (:func:`html_inline`, :func:`html_table`).
- Markdown: every ``{{ value }}`` passes through :func:`md_escape` (the environment's ``finalize``), so raw HTML,
  links, images or emphasis in run data can never reach the Markdown report as markup; tables and inline text built
  here (:func:`md_inline`, :func:`md_table`) escape their cells the same way.

Inline text (a verdict, an answer) may mark code with backticks (see :func:`lanelab.findings.verdict.code`); both
formats keep those spans as code and escape everything else. Everything is redacted on the way out as well.

Someone who does not read the Python can change the layout in ``report.html.j2`` and ``report.md.j2``; the values
they can use are listed at the top of each template.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from lanelab import redact
from lanelab.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TEMPLATES", "Table", "environment", "html_inline", "html_table", "md_escape", "md_inline", "md_table",
           "render", "safe_stem", "slug"]

TEMPLATES = Path(__file__).with_name("templates")

_MD_SPECIAL = re.compile(r"([\\`*\[\]|~!])")
_MD_LONE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d+)([.)]))")


@dataclass
class Table:
    """A table for the templates: column names and rows of text (already redacted), with optional narrow columns
    (``nowrap``) and columns shown as code (``code``)."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    code: frozenset[str] = frozenset()
    nowrap: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, index: bool = False, code: Sequence[str] = (),
                   nowrap: Sequence[str] = ()) -> Table:
        """A table of a DataFrame's values as text (None/NaN as empty, floats to 3 significant digits, lists
        joined), every value redacted."""
        import pandas as pd

        def cell(v: Any) -> str:
            if isinstance(v, (list, tuple)):
                return ", ".join(cell(x) for x in v)
            if v is None or (not isinstance(v, (dict, str)) and pd.isna(v)):
                return ""
            if isinstance(v, float):
                return f"{v:.3g}"
            return redact.redact_text(str(v))

        frame = df.reset_index() if index else df
        cols = [redact.redact_text(str(c)) for c in frame.columns]
        rows = [[cell(v) for v in rec] for rec in frame.itertuples(index=False, name=None)]
        return cls(cols, rows, frozenset(code), frozenset(nowrap))


def _clean(text: Any) -> str:
    return redact.redact_text("" if text is None else str(text)).replace("\r", " ").replace("\n", " ")


def md_escape(text: Any, line_start: bool = False) -> str:
    """Run data as Markdown text that renders literally: HTML specials become entities, Markdown punctuation is
    backslash-escaped (an underscore only where it could start emphasis), line breaks become spaces; redacted. With
    ``line_start`` (a value that begins a line), a block marker at its start (``#``, ``-``, ``+``, ``1.``) is made
    literal too."""
    t = _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    t = _MD_SPECIAL.sub(r"\\\1", t)
    t = _MD_LONE_UNDERSCORE.sub(r"\\_", t)
    return _MD_LINE_START.sub(_escape_line_start, t) if line_start else t


def _escape_line_start(m: re.Match[str]) -> str:
    """A block marker at the start of a value (heading, quote, list item) made literal."""
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


def _spans(text: Any) -> list[tuple[str, bool]]:
    """Text split into (segment, is_code) by backticks; an unpaired last backtick is text."""
    parts = _clean(text).split("`")
    if len(parts) % 2 == 0:  # odd number of backticks: the last one opens nothing
        parts[-2:] = [parts[-2] + "'" + parts[-1]]
    return [(p, i % 2 == 1) for i, p in enumerate(parts) if p or i % 2 == 1]


def md_inline(text: Any, in_table: bool = False) -> str:
    """Inline text with backtick code spans as Markdown: code kept as code, the rest escaped (:func:`md_escape`);
    ``in_table`` also escapes pipes inside code spans, as GitHub tables need."""
    out = []
    for seg, is_code in _spans(text):
        if is_code:
            seg = seg.replace("|", "\\|") if in_table else seg
            out.append(f"`{seg}`" if seg.strip() else "")
        else:
            out.append(md_escape(seg))
    return "".join(out)


_BREAK_AFTER = re.compile(r"([_=/])(?=\w)")
_LONG_TOKEN = re.compile(r"\S{19,}")


def _breakable(escaped: str) -> str:
    """Escaped text with a line-break opportunity (``<wbr>``) after ``_ = /`` inside long identifiers (19 characters
    or more), so a narrow column can wrap ``tools=memory_session_search_mcp__`` instead of widening the page."""
    return _LONG_TOKEN.sub(lambda m: _BREAK_AFTER.sub(r"\1<wbr>", m.group(0)), escaped)


def html_inline(text: Any, breakable: bool = False) -> Markup:
    """Inline text with backtick code spans as HTML: code in ``<code>``, every part escaped; with ``breakable``,
    long identifiers may wrap (see :func:`_breakable`)."""
    out = []
    for seg, is_code in _spans(text):
        e = _breakable(html.escape(seg)) if breakable else html.escape(seg)
        out.append(f"<code>{e}</code>" if is_code else e)
    return Markup("".join(out))


def html_table(table: Table, css_class: str = "") -> Markup:
    """A table as HTML, every cell escaped (cells may hold backtick code); long identifiers may wrap."""
    head = "".join(f"<th>{_breakable(html.escape(c))}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        tds = []
        for col, v in zip(table.columns, row):
            cls = ' class="nowrap"' if col in table.nowrap else ""
            inner = (f"<code>{_breakable(html.escape(v))}</code>" if col in table.code and v
                     else html_inline(v, breakable=True))
            tds.append(f"<td{cls}>{inner}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    cls = f' class="{html.escape(css_class)}"' if css_class else ""
    return Markup(f'<div class="table"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                  "</table></div>")


def md_table(table: Table) -> Markup:
    """A table as a GitHub pipe table, every cell escaped (pipes and line breaks too)."""
    def cell(col: str, v: str) -> str:
        if col in table.code and v:
            return md_inline(f"`{v.replace('`', chr(39))}`", in_table=True)
        return md_inline(v, in_table=True)
    if not table.columns:
        return Markup("")
    lines = ["| " + " | ".join(md_escape(c) for c in table.columns) + " |",
             "|" + "|".join(" --- " for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row)) + " |" for row in table.rows]
    return Markup("\n".join(lines))


def _md_finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return md_escape(value)


@lru_cache(maxsize=2)
def environment(kind: str) -> jinja2.Environment:
    """The Jinja2 environment for ``kind`` "html" (autoescape on) or "md" (every value through :func:`md_escape`).

    Filters: ``inline`` (backtick code spans kept, the rest escaped), ``table`` (a :class:`Table`), ``code`` (a
    value as one code span), ``block`` (a value that begins a line: in Markdown, a list or heading marker at its start
    is made literal).
    """
    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    if kind == "html":
        env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True)
        env.filters["inline"] = html_inline
        env.filters["table"] = html_table
        env.filters["code"] = lambda t: html_inline("`" + _clean(t).replace("`", "'") + "`")
        env.filters["block"] = lambda t: t
    elif kind == "md":
        env = jinja2.Environment(loader=loader, autoescape=False, finalize=_md_finalize,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters["inline"] = lambda t: Markup(md_inline(t))
        env.filters["table"] = md_table
        env.filters["code"] = lambda t: Markup(md_inline("`" + _clean(t).replace("`", "'") + "`"))
        env.filters["block"] = lambda t: Markup(md_escape(t, line_start=True))
    else:
        raise ValueError(f"unknown template kind {kind!r}")
    return env


def render(template: str, kind: str, **values: Any) -> str:
    """Render ``templates/<template>`` with ``values``.

    Returns:
        The text, redacted once more as a whole.

    Raises:
        jinja2.TemplateError: the template is broken or names a value that was not given (a bug, not user input).
    """
    return redact.redact_text(environment(kind).get_template(template).render(**values))


def slug(text: str) -> str:
    """``text`` as a file-name-safe fragment (letters, digits, "-" and "_"; at most 60 characters)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))[:60] or "run"


def safe_stem(stem: str) -> str:
    """``stem`` checked as a plain file-name stem, so the files land inside the output folder.

    Returns:
        The stem.

    Raises:
        InputError: the stem is empty, has a path separator or '..', or characters other than letters, digits,
            '.', '_' and '-'.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", stem or "") or ".." in stem:
        raise InputError(f"--name {stem!r} is not a plain file name; the report would land outside --out.",
                         "Use letters, digits, '.', '_' and '-' only (no '/' or '..'), e.g. --name findings.")
    return stem
