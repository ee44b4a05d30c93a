"""The report's plots, drawn with matplotlib (the ``[report]`` extra) and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot, so
drawing a report changes no global backend or state of the caller's process. Labels are
record text: math parsing is off, so a ``$`` in a tool name is drawn, not interpreted.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from intentguard.errors import MissingExtraError

if TYPE_CHECKING:
    from intentguard.report.model import SessionReport, Thresholds

__all__ = ["EFFECT_COLORS", "overview_png", "score_png"]

EFFECT_COLORS = {"ALLOW": "#2e7d32", "CONFIRM": "#e69500", "DENY": "#c62828"}
_MARKERS = {"ALLOW": "o", "CONFIRM": "D", "DENY": "X"}
_DEPARTURE = "#6a1b9a"
_STYLE = {"text.parse_math": False, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised in a subprocess without matplotlib
        raise MissingExtraError("The HTML report", "report", "matplotlib") from exc
    return matplotlib, Figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def overview_png(sessions: list[SessionReport]) -> bytes:
    """One row per session, one mark per call (colour = final decision), a ring where it left its intent."""
    matplotlib, figure_class = _matplotlib()
    with matplotlib.rc_context(_STYLE):
        figure = figure_class(figsize=(11, 0.9 + 0.42 * max(len(sessions), 1)))
        axes = figure.add_subplot()
        longest = max((call.seq for session in sessions for call in session.calls), default=1)
        for row, session in enumerate(sessions):
            y = len(sessions) - 1 - row
            departure = session.departure
            first, last = session.calls[0].seq, session.calls[-1].seq
            cut = departure.seq if departure is not None else last
            axes.plot([first, cut], [y, y], color="#9e9e9e", linewidth=1.2, zorder=1)
            if departure is not None:
                axes.plot([cut, last], [y, y], color=EFFECT_COLORS["DENY"], linewidth=2.2, zorder=1)
                axes.scatter([cut], [y], s=330, facecolors="none", edgecolors=_DEPARTURE, linewidths=2.2, zorder=3)
                code = departure.reasons[0].code if departure.reasons else "score"
                axes.annotate(
                    _short(f"left intent: {departure.tool} ({code})", 56),
                    (cut, y),
                    xytext=(12, 7),
                    textcoords="offset points",
                    color=_DEPARTURE,
                    fontweight="bold",
                )
            entered = [call.seq for call in session.calls if call.seq in session.untrusted_from]
            axes.scatter(entered, [y + 0.28] * len(entered), s=40, marker="v", color="#212121", zorder=3)
            for call in session.calls:
                effect = call.final_effect
                asked = {"edgecolors": EFFECT_COLORS["CONFIRM"], "linewidths": 2.5} if call.approver else {}
                axes.scatter(
                    [call.seq],
                    [y],
                    s=90 if asked else 60,
                    marker=_MARKERS.get(effect, "o"),
                    color=EFFECT_COLORS.get(effect),
                    zorder=2,
                    **asked,
                )
        axes.set_yticks(
            range(len(sessions)),
            [_short(f"{s.id} · {s.tenant}/{s.agent}", 44) for s in reversed(sessions)],
        )
        axes.set_xlim(-0.6, longest + 1.6)
        axes.set_ylim(-0.7, max(len(sessions), 1) - 0.3)
        axes.set_xlabel("decision number within the session (seq)")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(axis="x", color="#eeeeee")
        handles = [
            axes.scatter([], [], marker=_MARKERS[effect], color=color, label=effect.lower())
            for effect, color in EFFECT_COLORS.items()
        ]
        handles.append(axes.scatter([], [], s=200, facecolors="none", edgecolors=_DEPARTURE, label="left intent"))
        handles.append(
            axes.scatter(
                [],
                [],
                s=90,
                color="#ffffff",
                edgecolors=EFFECT_COLORS["CONFIRM"],
                linewidths=2.5,
                label="a person answered",
            )
        )
        handles.append(axes.scatter([], [], s=40, marker="v", color="#212121", label="untrusted text came in"))
        axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=6, frameon=False)
        return _png(figure)


def score_png(session: SessionReport, thresholds: Thresholds) -> bytes:
    """The session's divergence score per call, with the narrowing and revocation thresholds."""
    matplotlib, figure_class = _matplotlib()
    with matplotlib.rc_context(_STYLE):
        figure = figure_class(figsize=(11, 2.4))
        axes = figure.add_subplot()
        xs = [call.seq for call in session.calls]
        axes.axhspan(thresholds.narrow, thresholds.revoke, color="#fff3e0", zorder=0)
        axes.axhspan(thresholds.revoke, 1.05, color="#ffebee", zorder=0)
        axes.axhline(thresholds.narrow, color=EFFECT_COLORS["CONFIRM"], linestyle="--", linewidth=1)
        axes.axhline(thresholds.revoke, color=EFFECT_COLORS["DENY"], linestyle="--", linewidth=1)
        axes.text(-0.5, thresholds.narrow + 0.02, f"narrow {thresholds.narrow:g}", color=EFFECT_COLORS["CONFIRM"])
        axes.text(-0.5, thresholds.revoke + 0.02, f"revoke {thresholds.revoke:g}", color=EFFECT_COLORS["DENY"])
        axes.plot(xs, [call.score for call in session.calls], color="#455a64", linewidth=1.5, zorder=2)
        for x, call in zip(xs, session.calls, strict=True):
            effect = call.final_effect
            axes.scatter(
                [x], [call.score], s=70, marker=_MARKERS.get(effect, "o"), color=EFFECT_COLORS.get(effect), zorder=3
            )
        for x, call in zip(xs, session.calls, strict=True):
            if call.seq in session.untrusted_from:
                axes.annotate(
                    "untrusted text came in",
                    (x, call.score),
                    xytext=(0, 14),
                    textcoords="offset points",
                    ha="center",
                    arrowprops={"arrowstyle": "->", "color": "#212121"},
                )
        departure = session.departure
        if departure is not None:
            x = departure.seq
            axes.axvline(x, color=_DEPARTURE, linewidth=2, zorder=1)
            axes.annotate(
                _short(f"left intent at #{departure.seq}: {departure.tool}", 48),
                (x, 0.93),
                xytext=(6, 0),
                textcoords="offset points",
                color=_DEPARTURE,
                fontweight="bold",
            )
        labels = [_short(f"{call.seq} {call.tool}", 22) for call in session.calls]
        if len(xs) <= 24:
            axes.set_xticks(xs, labels, rotation=30, ha="right")
        else:
            axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_xlim(-0.6, max(xs, default=0) + 0.6)
        axes.set_ylim(-0.04, 1.05)
        axes.set_ylabel("divergence score")
        return _png(figure)
