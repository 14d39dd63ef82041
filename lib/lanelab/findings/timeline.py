"""When would this request have been billed where? The same request against every dated snapshot of the service.

The simulator's policies (``data/policies/<name>.toml``) are snapshots of how the real service behaved on a date, as
public reports describe it. :func:`timeline` sends one request (a profile, or the last inference request of a
capture) to one embedded simulator once per snapshot, switching the snapshot over the simulator's control routes
(reset, then policy) so every answer comes over the real HTTP path, and reads each answer with the kit's own readers
(:func:`lanelab.wire.classify.classify`, the unified-header lane, the drift flags). Because the request never
changes, any change along the row is a change on the service side, not the client's: that is what the timeline shows.

Nothing leaves this machine: the simulator runs on loopback, with a token it mints for the occasion. A first-party
reference profile (Claude Code) is refused for sending, as everywhere in the kit; a profile with an attestation marker
is sent without the block, and its caveat says so.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lanelab.findings.plots import Chart, cell_text, palette, text_colour, to_png
from lanelab.wire.spec import RequestSpec

__all__ = ["COLUMNS", "Snapshot", "Timeline", "TimelineRequest", "load_timeline_request", "snapshots", "timeline"]

#: Columns of :meth:`Timeline.to_frame`, in order.
COLUMNS = ("request", "policy", "date", "status", "outcome", "lane", "claim", "error_code", "message", "sim_rule",
           "rule_source", "changed", "new_to_kit")
#: How much of an error message a table shows.
MESSAGE_CHARS = 160


@dataclass(frozen=True)
class Snapshot:
    """One dated policy of the simulator."""

    name: str
    date: str
    description: str


@dataclass(frozen=True)
class TimelineRequest:
    """A request the timeline sends: its label, the spec as the kit sends it, and what findings must say about it."""

    label: str
    spec: RequestSpec
    caveats: tuple[str, ...] = ()
    source: str = ""


def snapshots(names: Iterable[str] | None = None) -> list[Snapshot]:
    """The simulator's dated policies (all of ``data/policies/`` unless ``names``), oldest first.

    Raises :class:`lanelab.sim.policy.PolicyNotFound` for a name with no policy, ``PolicyError`` for a bad file."""
    from lanelab.sim.server import list_policies, load_policy

    wanted = list(names) if names is not None else list_policies()
    known = set(list_policies())
    out = []
    for name in dict.fromkeys(wanted):
        if name not in known:  # a name, never a path
            from lanelab.sim.server import PolicyNotFound

            raise PolicyNotFound(f"No simulator policy named {name!r}.",
                                 f"Choose from: {', '.join(sorted(known)) or '(none)'}.")
        policy = load_policy(name)
        out.append(Snapshot(policy.name, policy.date, policy.description))
    return sorted(out, key=lambda s: (s.date, s.name))


def load_timeline_request(ref: str | Path) -> TimelineRequest:
    """The request named by ``ref``: a profile name or file, or a capture file (its last inference request).

    Returns a :class:`TimelineRequest`: the spec as the kit would send it (without an attestation block) and the
    caveats findings must show. Raises :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a first-party
    reference (it is never sent), and other ``UserError`` kinds for a missing or unreadable source.
    """
    from lanelab.matrix import profiles as profiles_mod
    from lanelab.matrix.from_capture import load_request
    from lanelab.wire.attestation import attestation_positions

    text = str(ref)
    label, spec = load_request(text)
    path = Path(text)
    if path.is_file() and path.suffix != ".toml":
        _, captured = load_request(text, as_captured=True)
        caveats: tuple[str, ...] = ((f"{label}: the client sent a billing attestation block; the kit never stores or sends it, so "
                    "this timeline is for the request without the block."),) if attestation_positions(captured) else ()
        return TimelineRequest(label, spec, caveats, f"capture {path.name}")
    name = path.stem if path.is_file() else text
    try:
        caveats = tuple(profiles_mod.load_profile(name).caveats) if not path.is_file() else ()
    except profiles_mod.UnknownProfile:
        caveats = ()
    return TimelineRequest(label, spec, caveats, f"profile {name}")


def _message(obs: Any) -> str:
    from lanelab.wire.classify import error_message

    text = " ".join(error_message(obs).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


@dataclass
class Timeline:
    """The same request(s) against every dated snapshot: one row per request and snapshot.

    ``to_frame()`` is the table; :meth:`chart` the picture (a :class:`~lanelab.findings.plots.Chart`, which displays
    itself); :meth:`changes` the steps where the service, not the request, moved the answer. In a notebook the object
    shows its table, its chart and its caveats."""

    requests: list[TimelineRequest]
    snapshots: list[Snapshot]
    rows: list[dict[str, Any]] = field(default_factory=list)
    account: Mapping[str, Any] | None = None
    credential_kind: str = "pkce"

    # ---- tables --------------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per request and snapshot (in date order), with the columns of :data:`COLUMNS`: the HTTP status,
        the outcome class and billing lane as the kit reads them, the representative claim, the error code and
        message, the simulator's rule that decided (and its public source), whether the answer ``changed`` from the
        previous snapshot, and what the response carried that is ``new_to_kit``."""
        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    def changes(self) -> pd.DataFrame:
        """The steps where the answer moved (outcome or lane differs from the snapshot before), one row each:
        ``request``, ``from_policy``, ``to_policy``, ``from``, ``to`` (outcome / lane), ``sim_rule`` and
        ``rule_source`` of the later snapshot. Empty (with these columns) when nothing moved."""
        cols = ["request", "from_policy", "to_policy", "from", "to", "sim_rule", "rule_source"]
        out: list[dict[str, Any]] = []
        last: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            before = last.get(row["request"])
            if before is not None and row["changed"]:
                out.append({"request": row["request"], "from_policy": before["policy"], "to_policy": row["policy"],
                            "from": f"{before['outcome']} / {before['lane']}", "to": f"{row['outcome']} / {row['lane']}",
                            "sim_rule": row["sim_rule"], "rule_source": row["rule_source"]})
            last[row["request"]] = row
        return pd.DataFrame(out, columns=cols)

    @property
    def caveats(self) -> list[str]:
        """What the findings must say about the requests (e.g. sent without an attestation block)."""
        return [c for r in self.requests for c in r.caveats]

    # ---- the picture ---------------------------------------------------------------------------------------
    def chart(self, title: str | None = None) -> Chart:
        """Requests × snapshots, each square coloured by outcome class and labelled with the status, the outcome
        and the lane; a square whose answer moved from the snapshot before is outlined.

        Returns the :class:`~lanelab.findings.plots.Chart` (a matplotlib Figure that displays itself)."""
        df = self.to_frame()
        labels = list(dict.fromkeys(r.label for r in self.requests))
        names = [s.name for s in self.snapshots]
        outcomes = list(dict.fromkeys(df["outcome"].astype(str)))
        from lanelab.findings.frame import lane_label, outcome_label

        colours = palette(outcomes)
        fig = Chart(figsize=(max(6.0, 1.9 * len(names) + 3.0), max(2.4, 0.9 * len(labels) + 1.8)),
                    layout="constrained")
        ax = fig.add_subplot()
        from matplotlib.colors import to_rgb
        from matplotlib.patches import Patch, Rectangle

        image = [[to_rgb("#F2F2F2")] * len(names) for _ in labels]
        for rec in df.to_dict("records"):
            i, j = labels.index(rec["request"]), names.index(rec["policy"])
            colour = colours[str(rec["outcome"])]
            image[i][j] = to_rgb(colour)
            said = cell_text(rec["status"], str(rec["outcome"]), width=22)  # plain words, as the heatmap says it
            ax.text(j, i, f"{said}\nlane: {lane_label(rec['lane'])}", ha="center", va="center",
                    fontsize=8, color=text_colour(colour))
            if rec["changed"]:
                ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, linewidth=2.2,
                                       edgecolor="black"))
        ax.imshow(image, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(names)), labels=[f"{s.name}\n({s.date})" for s in self.snapshots])
        ax.set_yticks(range(len(labels)), labels=labels)
        ax.set_xticks([x - 0.5 for x in range(1, len(names))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("simulator snapshot of the service (oldest first)")
        ax.set_title(title or "When would this request have been billed where?", fontsize=10)
        handles = [Patch(facecolor=colours[o], label=outcome_label(o)) for o in outcomes]
        handles.append(Patch(facecolor="white", edgecolor="black", linewidth=2, label="moved (service side)"))
        ax.legend(handles=handles, title="outcome", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  title_fontsize=8, frameon=False)
        return fig

    # ---- display -------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        df = self.to_frame()
        lines = []
        for label in dict.fromkeys(r.label for r in self.requests):
            lines.append(f"{label}:")
            for rec in df[df["request"] == label].to_dict("records"):
                status = "—" if rec["status"] is None or pd.isna(rec["status"]) else int(rec["status"])
                mark = "  <- moved" if rec["changed"] else ""
                claim = f" claim {rec['claim']}" if rec["claim"] else ""
                lines.append(f"  {rec['policy']:<11} {rec['date']:<11} {status!s:>4} {rec['outcome']:<26} "
                             f"lane {rec['lane']}{claim} (rule {rec['sim_rule']}){mark}")
                if rec["new_to_kit"]:
                    lines.append(f"    new to this kit: {rec['new_to_kit']}")
        moved = self.changes()
        if moved.empty:
            lines.append("No snapshot moved the answer: the same outcome and lane in every snapshot.")
        else:
            lines.append("Moved on the service side (the request did not change):")
            lines += [f"  {m['request']}: {m['from_policy']} → {m['to_policy']}: {m['from']} → {m['to']} "
                      f"(rule {m['sim_rule']}: {m['rule_source']})" for m in moved.to_dict("records")]
        lines += [f"Caveat: {c}" for c in self.caveats]
        lines.append("Simulated: each snapshot is the kit's model of the service on that date, from public reports.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import base64

        from lanelab import redact

        table = self.to_frame().to_html(index=False, escape=True, na_rep="")
        png = base64.b64encode(to_png(self.chart())).decode("ascii")
        notes = "".join(f"<li>{html.escape(redact.redact_text(c))}</li>" for c in self.caveats)
        return (f"<div><img src='data:image/png;base64,{png}' alt='timeline chart'/>{table}"
                + (f"<p><b>Caveats</b></p><ul>{notes}</ul>" if notes else "")
                + "<p><i>Simulated: each snapshot is the kit's model of the service on that date, from public "
                  "reports.</i></p></div>")


# ------------------------------------------------------------------------------------------------ running it
def _unknown_text(obs: Any) -> str:
    return "; ".join(str(u) for u in (obs.unknown or []))


def _row(req: TimelineRequest, snap: Snapshot, obs: Any, verdict: Any, logged: Mapping[str, Any] | None,
         before: Mapping[str, Any] | None) -> dict[str, Any]:
    from lanelab.sim.server import load_policy

    rule = str((logged or {}).get("rule") or "")
    try:
        source = load_policy(snap.name).rule(rule).source if rule else ""
    except KeyError:  # a decision no policy rule made (a scope check, a fault, the router)
        source = ""
    row = {"request": req.label, "policy": snap.name, "date": snap.date, "status": obs.status,
           "outcome": verdict.outcome, "lane": verdict.lane, "claim": obs.unified.representative_claim or "",
           "error_code": obs.error_code or "", "message": _message(obs) if not obs.ok else "", "sim_rule": rule,
           "rule_source": source, "new_to_kit": _unknown_text(obs)}
    row["changed"] = before is not None and (before["outcome"], before["lane"]) != (row["outcome"], row["lane"])
    return row


def timeline(refs: str | Path | Sequence[str | Path], policies: Iterable[str] | None = None, *,
             account: Mapping[str, Any] | None = None, credential_kind: str = "pkce") -> Timeline:
    """Send the request(s) ``refs`` (profile names or files, or capture files) to one embedded simulator under each
    dated snapshot (all of ``data/policies/`` unless ``policies``), oldest first.

    ``account`` is merged over the simulator's default account for every snapshot (e.g. ``{"plan": "ultra"}``);
    ``credential_kind`` is the simulator credential sent (``pkce``, ``setup-token`` or ``api_key``). Between
    snapshots the simulator is reset, so no snapshot inherits another's spending.

    Returns a :class:`Timeline`. Raises :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a first-party
    reference, ``PolicyNotFound`` for an unknown snapshot, ``AccountShapeError`` for an account of the wrong shape,
    and other ``UserError`` kinds for a missing or unreadable source; nothing is sent before these checks pass.
    """
    import httpx

    from lanelab import http as lanelab_http
    from lanelab.errors import InputError, ServiceError
    from lanelab.matrix.sim_client import sim_token
    from lanelab.sim.server import MINT_KINDS, running_simulator
    from lanelab.wire.classify import classify
    from lanelab.wire.send import send

    if credential_kind not in MINT_KINDS:
        raise InputError(f"credential_kind {credential_kind!r} is not one of {', '.join(MINT_KINDS)}.")
    ref_list = [refs] if isinstance(refs, (str, Path)) else list(refs)
    if not ref_list:
        raise InputError("Name at least one request: a profile name or file, or a capture file.")
    requests = [load_timeline_request(r) for r in ref_list]
    snaps = snapshots(policies)
    if not snaps:
        raise InputError("No simulator policy to run: data/policies/ holds none.")
    result = Timeline(requests=requests, snapshots=snaps, account=dict(account) if account else None,
                      credential_kind=credential_kind)
    with running_simulator(policy=snaps[0].name, account=dict(account) if account else None) as sim, \
            lanelab_http.client(sim.base_url, timeout=30.0) as http:
        base = sim.base_url
        last: dict[str, dict[str, Any]] = {}
        for snap in snaps:
            for req in requests:
                try:  # back to the start (the log empties too), then this snapshot
                    for path, body in (("/_sim/reset", None), ("/_sim/policy", {"name": snap.name})):
                        answer = http.post(base + path, json=body)
                        if answer.status_code != 200:
                            raise ServiceError(f"The simulator refused {path} (HTTP {answer.status_code}).")
                    token = sim_token(base, kind=credential_kind, source=f"lanelab:timeline:{credential_kind}")
                    obs = send(req.spec, base, token, http)
                    log = http.get(base + "/_sim/requests").json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise ServiceError(f"The timeline's simulator stopped answering ({type(exc).__name__}).") from None
                verdict = classify(obs)
                logged = log[-1] if isinstance(log, list) and log and isinstance(log[-1], dict) else None
                row = _row(req, snap, obs, verdict, logged, last.get(req.label))
                last[req.label] = row
                result.rows.append(row)
    order = {r.label: i for i, r in enumerate(requests)}
    result.rows.sort(key=lambda r: order[r["request"]])  # stable: snapshots stay in date order per request
    return result
