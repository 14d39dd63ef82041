"""The simulator's policy engine: ordered, cited rules from data/policies/<name>.toml decide each request's outcome.

A policy is a snapshot of how the real service behaved on a date, as public reports describe it. Rules are data
(first match wins, every rule names its source), so updating the model after a new report means editing a TOML
file, not code. This module owns the small condition vocabulary those files may use and checks every file on load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_dir
from lanelab.datafiles import DataFileError, load_cached, read_toml
from lanelab.errors import NotFound
from lanelab.sim import outcomes
from lanelab.sim.features import (
    AUTH_STYLES,
    BODY_SHAPES,
    MODEL_FAMILIES,
    TOKEN_KINDS,
    RequestFeatures,
    header_pairs,
)
from lanelab.sim.service import (
    Hosts,
    ModelEntry,
    Service,
    ServiceShapeError,
    parse_hosts,
    parse_models,
    parse_service,
)
from lanelab.version_gate import GateHit, load_version_gate

__all__ = ["BODY_STYLES", "CONDITIONS", "TOKEN_CONDITIONS", "TOKEN_META_KEYS", "TOKEN_OUTCOMES", "Condition", "Decision",
           "Policy", "PolicyError", "PolicyNotFound", "Rule", "TokenRequest", "body_style", "gate_hit", "list_policies",
           "load_policy", "load_policy_file", "policies_dir"]

TOKEN_OUTCOMES = ("token_not_found", "token_rate_limited", "token_forbidden", "token_bad_request",
                  "token_invalid_format", "token_edge_banned")
BODY_STYLES = ("json", "form", "other", "none")
TOKEN_META_KEYS = frozenset({"body_styles_source", "body_styles_note", "body_style_outcome", "body_style_source"})


class PolicyError(DataFileError):
    """A policy file is missing or malformed; the message names the file, the rule or key, and what was expected."""

    hint = "Fix the policy file (docs/contracts.md §1.1 and the comment at the top of each policy describe the format)."


class PolicyNotFound(NotFound):
    """No policy of that name."""


@dataclass(frozen=True)
class Decision:
    """Which outcome a request gets, which cited rule said so, and what the reply's message names (``details``: the
    versions of the version gate, the problem of an invalid request)."""

    outcome: str
    rule_id: str
    source: str
    details: dict[str, str] = field(default_factory=dict, compare=False)


# ------------------------------------------------------------------------------------------------ vocabulary
def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A condition's value as a tuple: a list's items, or the one value."""
    return tuple(value) if isinstance(value, list) else (value,)


def _as_set(value: Any) -> frozenset[Any]:
    """A condition's values as a set, for membership tests (they are strings: ``in`` means the same as on a list)."""
    return frozenset(_as_tuple(value))


def _same(value: Any) -> Any:
    return value


#: How each kind of condition value is prepared once, when the policy is loaded ("strs" and the others may override).
_PREPARE: dict[str, Callable[[Any], Any]] = {"bool": _same, "int": _same, "regex": re.compile, "strs": _as_tuple}


@dataclass(frozen=True)
class Condition:
    """One condition key: what values it accepts (for validation), how its value is prepared when a policy is loaded
    (``prepare``; by default per ``kind``: a tuple of strings, a compiled regex), when it holds (``test``: a Python
    expression over the request ``f`` and the prepared value ``{v}``, compiled into each rule that uses the key), and
    (for some) what it tells the reply's message when it matched (``details``)."""

    kind: str  # bool | int | str | strs (a string or a list of strings) | regex
    test: str
    choices: tuple[str, ...] = ()
    doc: str = ""
    details: Callable[[Any], dict[str, str]] | None = None
    prepare: Callable[[Any], Any] | None = None

    def prepared(self, value: Any) -> Any:
        """``value`` (checked by :func:`_check_value`) in the form :attr:`test` takes."""
        return (self.prepare or _PREPARE[self.kind])(value)


def gate_hit(f: RequestFeatures) -> GateHit | None:
    """The version gate's verdict on a request (data/version_gate.toml): a user agent claiming a Claude Code version
    below the floor of the requested model, or None."""
    return load_version_gate().check(f.model, f.user_agents)


def _gate_details(f: RequestFeatures) -> dict[str, str]:
    hit = gate_hit(f)
    return hit.details if hit is not None else {}


def _upper_set(value: Any) -> frozenset[str]:
    return frozenset(m.upper() for m in _as_tuple(value))


def _any_prefixed(prefixes: tuple[str, ...], texts: tuple[str, ...]) -> bool:
    for text in texts:
        if text.startswith(prefixes):
            return True
    return False


def _any_search(rx: re.Pattern[str], texts: tuple[str, ...]) -> bool:
    for text in texts:
        if rx.search(text):
            return True
    return False


def _contains_any(needles: tuple[str, ...], text: str) -> bool:
    for needle in needles:
        if needle in text:
            return True
    return False


def _contains_all(needles: tuple[str, ...], text: str) -> bool:
    for needle in needles:
        if needle not in text:
            return False
    return True


#: Request conditions. Keys in a rule's `when` are ANDed. "strs" accept a string or a list (any-of unless noted).
#: Each ``test`` reads the value as prepared when the policy was loaded (``{v}``): a frozenset (``_as_set``) for
#: membership, a tuple for prefixes and substrings, a compiled regex.
CONDITIONS: dict[str, Condition] = {
    "method_in": Condition("strs", "f.method in {v}", doc="HTTP method", prepare=_upper_set),
    "path_in": Condition("strs", "f.path in {v}", doc="exact path", prepare=_as_set),
    "path_prefix": Condition("strs", "f.path.startswith({v})"),
    "beta_query": Condition("bool", "f.beta_query == {v}", doc="?beta=true present"),
    "body_shape": Condition("strs", "f.body_shape in {v}", BODY_SHAPES, prepare=_as_set),
    "auth_style": Condition("strs", "f.auth_style in {v}", AUTH_STYLES, prepare=_as_set),
    "token_kind": Condition("strs", "f.token.kind in {v}", TOKEN_KINDS, prepare=_as_set),
    "token_valid": Condition("bool", "f.token.valid == {v}"),
    "token_expired": Condition("bool", "f.token.expired == {v}"),
    "token_source_in": Condition("strs", "f.token.source in {v}", prepare=_as_set),
    "scopes_lack": Condition("strs", "{v}.isdisjoint(f.token.scopes)", doc="has none of these scopes",
                             prepare=_as_set),
    "beta_has": Condition("strs", "{v}.issubset(f.betas)", doc="has all of these", prepare=_as_set),
    "beta_has_any": Condition("strs", "not {v}.isdisjoint(f.betas)", prepare=_as_set),
    "beta_lacks": Condition("strs", "{v}.isdisjoint(f.betas)", doc="has none of these", prepare=_as_set),
    "ua_prefix": Condition("strs", "_any_prefixed({v}, f.user_agents)",
                           doc="some user-agent header starts with one of these"),
    "ua_lacks_prefix": Condition("strs", "not _any_prefixed({v}, f.user_agents)",
                                 doc="no user-agent header starts with any of these"),
    "ua_absent": Condition("bool", "(not f.user_agents) == {v}", doc="no non-empty user-agent"),
    "x_app": Condition("strs", "f.x_app in {v}", prepare=_as_set),
    "x_app_absent": Condition("bool", '(f.x_app in (None, "")) == {v}'),
    "first_system_is_identity": Condition("bool", "f.first_system_is_identity == {v}"),
    "system_contains_any": Condition("strs", "_contains_any({v}, f.system_text)"),
    "system_contains_all": Condition("strs", "_contains_all({v}, f.system_text)"),
    "system_chars_over": Condition("int", "f.system_chars > {v}"),
    "tools_present": Condition("bool", "f.tools_present == {v}"),
    "tools_json_over": Condition("int", "f.tools_json_size > {v}"),
    "tool_name_regex": Condition("regex", "_any_search({v}, f.tool_names)", doc="some wire tool name"),
    "tool_named_any": Condition("strs", "not {v}.isdisjoint(f.tool_base_names)", prepare=_as_set,
                                doc="some tool's base name (mcp_/mcp__ wrappers removed) is one of these"),
    "tool_choice_type": Condition("strs", "f.tool_choice_type in {v}", prepare=_as_set),
    "model_family_in": Condition("strs", "f.model_family in {v}", MODEL_FAMILIES, prepare=_as_set),
    "model_regex": Condition("regex", '{v}.search(f.model or "") is not None'),
    "stream": Condition("bool", "f.stream == {v}"),
    "max_tokens_over": Condition("int", "(f.max_tokens or 0) > {v}"),
    "has_metadata_user_id": Condition("bool", "f.has_metadata_user_id == {v}"),
    "request_invalid": Condition("bool", "(f.request_problem is not None) == {v}",
                                 doc="the body breaks the Messages request shape (lanelab.sim.validation)",
                                 details=lambda f: {"problem": f.request_problem or ""}),
    "claims_version_below_floor": Condition("bool", "(gate_hit(f) is not None) == {v}",
                                            doc="a user agent claims a Claude Code version below the requested "
                                                "model's floor (data/version_gate.toml)",
                                            details=_gate_details),
}


@dataclass(frozen=True)
class TokenRequest:
    """What token-endpoint rules look at: the user agents, the body style, the host it was sent to and the grant."""

    user_agents: tuple[str, ...]
    body_style: str
    host: str = ""
    grant_type: str | None = None


#: Token-endpoint conditions (rules under [[token_endpoint.rule]]).
TOKEN_CONDITIONS: dict[str, Condition] = {
    "ua_prefix": CONDITIONS["ua_prefix"],
    "ua_lacks_prefix": CONDITIONS["ua_lacks_prefix"],
    "ua_absent": CONDITIONS["ua_absent"],
    "body_style_in": Condition("strs", "f.body_style in {v}", BODY_STYLES, prepare=_as_set),
    "host_in": Condition("strs", "f.host in {v}", prepare=_as_set,
                         doc="the host name the request was sent to (only under the real names, see [hosts])"),
    "grant_type_in": Condition("strs", "f.grant_type in {v}", prepare=_as_set,
                               choices=("authorization_code", "refresh_token")),
}


def body_style(content_type: str | None) -> str:
    """json / form / other / none, from a Content-Type header value."""
    if not content_type or not content_type.strip():
        return "none"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    return "other"


# ------------------------------------------------------------------------------------------------ rules
@dataclass(frozen=True)
class Rule:
    """One cited rule: when all conditions hold, the request gets ``outcome``.

    The conditions are compiled once, when the rule is made, against ``vocabulary`` (:data:`CONDITIONS`, or
    :data:`TOKEN_CONDITIONS` for the token endpoint's rules) into one function (:attr:`test`): the keys' ``test``
    expressions ANDed in the order the file lists them (the rule stops at the first that fails), each value prepared
    and passed in as an argument (a policy file's values never become code)."""

    id: str
    when: dict[str, Any]
    outcome: str
    source: str
    note: str = ""
    vocabulary: Mapping[str, Condition] = field(default_factory=lambda: CONDITIONS, repr=False, compare=False)
    test: Callable[[Any], bool] = field(init=False, repr=False, compare=False)
    explains: tuple[Callable[[Any], dict[str, str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions = [self.vocabulary[key] for key in self.when]
        object.__setattr__(self, "test", _compile(conditions, [c.prepared(v) for c, v in zip(conditions,
                                                                                               self.when.values())]))
        object.__setattr__(self, "explains", tuple(c.details for c in conditions if c.details is not None))

    def matches(self, subject: Any, vocabulary: Mapping[str, Condition] | None = None) -> bool:
        """Whether every condition holds for ``subject`` (``vocabulary``, if given, must be the rule's own)."""
        if vocabulary is not None and vocabulary is not self.vocabulary:
            raise ValueError(f"Rule {self.id!r} was compiled against another vocabulary of conditions.")
        return self.test(subject)

    def details(self, subject: Any, vocabulary: Mapping[str, Condition] | None = None) -> dict[str, str]:
        """What the conditions of this (matching) rule tell the reply's message (``vocabulary`` as for
        :meth:`matches`)."""
        if vocabulary is not None and vocabulary is not self.vocabulary:
            raise ValueError(f"Rule {self.id!r} was compiled against another vocabulary of conditions.")
        out: dict[str, str] = {}
        for explain in self.explains:
            out.update(explain(subject))
        return out


def _compile(conditions: list[Condition], values: list[Any]) -> Callable[[Any], bool]:
    """One function of the request that is true when every condition holds for its prepared value, tested in order
    (every ``test`` expression is true or false, so the conjunction is too). The source holds only the vocabulary's
    expressions and argument names; the values come in as arguments. It runs with this module's names (the helpers
    the expressions call), looked up when it runs, as any function of the module."""
    names = [f"v{i}" for i in range(len(values))]
    body = " and ".join(f"({c.test.format(v=name)})" for c, name in zip(conditions, names, strict=True)) or "True"
    source = f"def make({', '.join(names)}):\n    def test(f):\n        return {body}\n    return test\n"
    made: dict[str, Any] = {}
    exec(compile(source, "<policy rule>", "exec"), globals(), made)  # noqa: S102 - the vocabulary's own expressions
    test: Callable[[Any], bool] = made["make"](*values)
    return test


@dataclass(frozen=True)
class Policy:
    """A named snapshot: ordered inference rules plus token-endpoint rules, all from one TOML file."""

    name: str
    date: str
    description: str
    sources: tuple[str, ...]
    rules: tuple[Rule, ...]
    token_rules: tuple[Rule, ...]
    token_body_styles: tuple[str, ...]
    path: Path
    token_meta: dict[str, Any] = field(default_factory=dict)
    service: Service = field(default_factory=Service)
    hosts: Hosts | None = None
    models: tuple[ModelEntry, ...] = ()

    def decide(self, features: RequestFeatures) -> Decision:
        """The first matching rule's outcome (the file's final rule matches everything)."""
        for rule in self.rules:
            if rule.test(features):
                return Decision(rule.outcome, rule.id, rule.source, rule.details(features))
        last = self.rules[-1]  # validation guarantees an unconditional default; kept for safety
        return Decision(last.outcome, last.id, last.source)

    def decide_token(self, headers: Any, content_type: str | None, host: str = "",
                     grant_type: str | None = None) -> Decision | None:
        """A token-endpoint refusal for this user agent / body style / host / grant, or None to let the exchange
        proceed."""
        uas = tuple(v.strip() for k, v in header_pairs(headers) if k == "user-agent" and v.strip())
        req = TokenRequest(user_agents=uas, body_style=body_style(content_type), host=host or "",
                           grant_type=grant_type if isinstance(grant_type, str) else None)
        for rule in self.token_rules:
            if rule.test(req):
                return Decision(rule.outcome, rule.id, rule.source)
        if req.body_style not in self.token_body_styles:
            meta = self.token_meta
            return Decision(meta["body_style_outcome"], "token_body_style", meta["body_style_source"])
        return None

    def rule(self, rule_id: str) -> Rule:
        for r in (*self.rules, *self.token_rules):
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    @property
    def token_rule_ids(self) -> tuple[str, ...]:
        return (*(r.id for r in self.token_rules), "token_body_style")

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (for GET /_sim/policy and reports)."""
        return {
            "name": self.name, "date": self.date, "description": self.description, "sources": list(self.sources),
            "rules": [{"id": r.id, "when": r.when, "outcome": r.outcome, "source": r.source, "note": r.note}
                      for r in self.rules],
            "token_endpoint": {
                "body_styles": list(self.token_body_styles),
                "rules": [{"id": r.id, "when": r.when, "outcome": r.outcome, "source": r.source, "note": r.note}
                          for r in self.token_rules],
                **{k: v for k, v in self.token_meta.items() if k != "rule"},
            },
            "service": self.service.summary(),
            "hosts": self.hosts.summary() if self.hosts else None,
            "models": [m.summary() for m in self.models],
        }


# ------------------------------------------------------------------------------------------------ loading
def policies_dir() -> Path:
    return data_dir() / "policies"


def list_policies() -> list[str]:
    """Names of the policy snapshots shipped in data/policies/, oldest first."""
    d = policies_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def _check_value(cond: Condition, value: Any) -> str | None:
    """Why ``value`` does not suit ``cond``, or None."""
    if cond.kind == "bool":
        return None if isinstance(value, bool) else "expects true or false"
    if cond.kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "expects an integer"
    if cond.kind == "regex":
        if not isinstance(value, str):
            return "expects a regular expression string"
        try:
            re.compile(value)
        except re.error as exc:
            return f"has an invalid regular expression ({exc})"
        return None
    values = _as_tuple(value)
    if not values or not all(isinstance(v, str) for v in values):
        return "expects a string or a non-empty list of strings"
    if cond.choices:
        bad = [v for v in values if v not in cond.choices]
        if bad:
            return f"has {bad}; allowed: {list(cond.choices)}"
    return None


def _parse_rule(raw: Any, where: str, path: Path, vocabulary: Mapping[str, Condition],
                allowed_outcomes: tuple[str, ...] | frozenset[str]) -> Rule:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"Policy {path}: {where} is not a table.")
    rid = raw.get("id")
    label = f"{where} ({rid!r})" if rid else where
    if not isinstance(rid, str) or not rid:
        raise PolicyError(f"Policy {path}: {where} has no `id`.")
    unknown_fields = set(raw) - {"id", "when", "outcome", "source", "note"}
    if unknown_fields:
        raise PolicyError(f"Policy {path}: rule {label} has unknown field(s) {sorted(unknown_fields)}.")
    for key in ("outcome", "source"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise PolicyError(f"Policy {path}: rule {label} needs a non-empty `{key}`.")
    when = raw.get("when", {})
    if not isinstance(when, Mapping):
        raise PolicyError(f"Policy {path}: rule {label}: `when` must be a table of conditions.")
    for key, value in when.items():
        cond = vocabulary.get(key)
        if cond is None:
            raise PolicyError(
                f"Policy {path}: rule {label} uses unknown condition {key!r}. "
                f"Known conditions: {', '.join(sorted(vocabulary))}."
            )
        problem = _check_value(cond, value)
        if problem:
            raise PolicyError(f"Policy {path}: rule {label}: condition {key!r} {problem}.")
    if raw["outcome"] not in allowed_outcomes:
        raise PolicyError(
            f"Policy {path}: rule {label} names unknown outcome {raw['outcome']!r}. "
            f"Known outcomes: {', '.join(sorted(allowed_outcomes))}."
        )
    return Rule(id=rid, when=dict(when), outcome=raw["outcome"], source=raw["source"], note=str(raw.get("note", "")),
                vocabulary=vocabulary)


def load_policy_file(path: Path) -> Policy:
    """Parse and validate one policy file (cached until the file changes; policies are immutable)."""
    return load_cached(Path(path), _parse_policy_file, "policy file", PolicyError)


def _parse_policy_file(path: Path) -> Policy:
    doc = read_toml(path, "policy file", PolicyError)
    head = doc.get("policy")
    if not isinstance(head, Mapping):
        raise PolicyError(f"Policy {path} has no [policy] table (name, date, description, sources).")
    for key in ("name", "date", "description"):
        if not isinstance(head.get(key), str) or not head[key]:
            raise PolicyError(f"Policy {path}: [policy] needs a non-empty `{key}`.")
    unknown_top = set(doc) - {"policy", "rule", "token_endpoint", "service", "hosts", "model"}
    if unknown_top:
        raise PolicyError(f"Policy {path} has unknown section(s) {sorted(unknown_top)}; known: policy, rule, "
                          "token_endpoint, service, hosts, model.")
    sources = head.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
        raise PolicyError(f"Policy {path}: policy.sources must be a list of strings.")

    inference_outcomes = frozenset(o for o in outcomes.outcome_ids() if o not in TOKEN_OUTCOMES)
    raw_rules = doc.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError(f"Policy {path} has no [[rule]] entries.")
    rules = tuple(_parse_rule(r, f"rule #{i + 1}", path, CONDITIONS, inference_outcomes)
                  for i, r in enumerate(raw_rules))
    _check_ids(rules, path)
    if rules[-1].when:
        raise PolicyError(f"Policy {path}: the last rule ({rules[-1].id!r}) must be the default, with no conditions.")
    for r in rules[:-1]:
        if not r.when:
            raise PolicyError(f"Policy {path}: rule {r.id!r} has no conditions but is not last; later rules "
                              "could never match.")

    token = doc.get("token_endpoint", {})
    if not isinstance(token, Mapping):
        raise PolicyError(f"Policy {path}: [token_endpoint] must be a table.")
    styles = token.get("body_styles", list(BODY_STYLES[:2]))
    problem = _check_value(Condition("strs", "True", BODY_STYLES), styles)
    if problem:
        raise PolicyError(f"Policy {path}: [token_endpoint] body_styles {problem}.")
    unknown_keys = set(token) - TOKEN_META_KEYS - {"rule", "body_styles"}
    if unknown_keys:
        raise PolicyError(f"Policy {path}: [token_endpoint] has unknown key(s) {sorted(unknown_keys)}; "
                          f"known: body_styles, rule, {', '.join(sorted(TOKEN_META_KEYS))}.")
    meta = {k: v for k, v in token.items() if k not in ("rule", "body_styles")}
    meta.setdefault("body_style_outcome", "token_invalid_format")
    meta.setdefault("body_style_source", "model assumption")
    if meta["body_style_outcome"] not in TOKEN_OUTCOMES:
        raise PolicyError(f"Policy {path}: [token_endpoint] body_style_outcome {meta['body_style_outcome']!r} "
                          f"is not a token-endpoint outcome ({', '.join(TOKEN_OUTCOMES)}).")
    raw_token_rules = token.get("rule", [])
    if not isinstance(raw_token_rules, list):
        raise PolicyError(f"Policy {path}: token_endpoint.rule must be an array of tables ([[token_endpoint.rule]]).")
    token_rules = tuple(_parse_rule(r, f"token_endpoint rule #{i + 1}", path, TOKEN_CONDITIONS, TOKEN_OUTCOMES)
                        for i, r in enumerate(raw_token_rules))
    _check_ids((*rules, *token_rules), path)
    if any("claims_version_below_floor" in r.when for r in rules):
        load_version_gate()  # a policy that uses the gate needs a readable gate: say so when it is loaded
    try:
        service = parse_service(doc.get("service", {}))
        hosts = parse_hosts(doc["hosts"]) if "hosts" in doc else None
        models = parse_models(doc.get("model", []))
    except ServiceShapeError as exc:
        raise PolicyError(f"Policy {path}: {exc}") from None
    return Policy(
        name=head["name"], date=head["date"], description=head["description"],
        sources=tuple(sources), rules=rules, token_rules=token_rules,
        token_body_styles=_as_tuple(styles), path=path, token_meta=meta,
        service=service, hosts=hosts, models=models,
    )


def _check_ids(rules: tuple[Rule, ...], path: Path) -> None:
    seen: set[str] = set()
    for r in rules:
        if r.id in seen or r.id == "token_body_style":
            raise PolicyError(f"Policy {path}: rule id {r.id!r} is used twice (or reserved); ids must be unique.")
        seen.add(r.id)


def load_policy(name_or_path: str | Path) -> Policy:
    """A policy by name (data/policies/<name>.toml) or by file path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        return load_policy_file(candidate)
    path = policies_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(list_policies()) or "none found"
        raise PolicyNotFound(
            f"No simulator policy named {str(name_or_path)!r} in {policies_dir()}.",
            hint=f"Choose one of: {known}.",
        )
    return load_policy_file(path)
