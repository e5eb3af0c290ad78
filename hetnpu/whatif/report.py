"""The sweep's HTML page: sensitivity of latency to each parameter, a heatmap over the first two
varied parameters, and the Pareto front of latency against a cost proxy.

One self-contained file: plotly's JavaScript is inlined once and the rows are embedded as JSON
(``<script id="sweep-data">``), so it reads offline and its numbers can be checked.
"""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hetnpu.atomic import atomic_write_text

__all__ = ["pareto_front", "render_report", "write_report"]


def pareto_front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """Rows no other row beats on both ``x`` and ``y`` (lower is better), sorted by ``x``.

    >>> pareto_front([{"c": 1, "l": 5}, {"c": 2, "l": 3}, {"c": 3, "l": 4}], "c", "l")
    [{'c': 1, 'l': 5}, {'c': 2, 'l': 3}]
    """
    front: list[dict[str, Any]] = []
    best = float("inf")
    for r in sorted(rows, key=lambda r: (r[x], r[y])):
        if r[y] < best:
            front.append(r)
            best = r[y]
    return front


def _varied(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> list[str]:
    return [p for p in params if len({json.dumps(r.get(p)) for r in rows}) > 1]


def _numeric(rows: Sequence[dict[str, Any]], p: str) -> bool:
    return all(isinstance(r.get(p), int | float) and not isinstance(r.get(p), bool) for r in rows)


def _ordered(values: list[Any]) -> list[Any]:
    try:
        return sorted(set(values))
    except TypeError:
        return list(dict.fromkeys(values))


def _sensitivity(go: Any, make_subplots: Any, ok: list[dict], varied: list[str]) -> Any:
    cols = min(len(varied), 3)
    nrows = -(-len(varied) // cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=varied)
    for i, p in enumerate(varied):
        r, c = divmod(i, cols)
        numeric = _numeric(ok, p)
        xs = [r_[p] if numeric else str(r_[p]) for r_ in ok]
        # Every point, and the median over the other parameters at each value.
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[r_["latency_s"] * 1e3 for r_ in ok],
                mode="markers",
                marker={"opacity": 0.5},
                name=f"{p}: points",
                text=[r_["key"] for r_ in ok],
                showlegend=False,
            ),
            row=r + 1,
            col=c + 1,
        )
        values = _ordered(xs)
        med = [
            statistics.median(r_["latency_s"] * 1e3 for r_, x in zip(ok, xs, strict=True) if x == v)
            for v in values
        ]
        fig.add_trace(
            go.Scatter(
                x=values, y=med, mode="lines+markers", name=f"{p}: median", showlegend=False
            ),
            row=r + 1,
            col=c + 1,
        )
        if numeric and min(values) > 0 and max(values) / min(values) >= 8:
            fig.update_xaxes(type="log", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="latency (ms)", row=r + 1, col=c + 1)
    fig.update_layout(
        title="Sensitivity: latency against each parameter (dots: points; line: median)",
        height=360 * nrows,
    )
    return fig


def _heatmap(go: Any, ok: list[dict], a: str, b: str) -> Any:
    num_a, num_b = _numeric(ok, a), _numeric(ok, b)
    ax = [r[a] if num_a else str(r[a]) for r in ok]
    by = [r[b] if num_b else str(r[b]) for r in ok]
    xs, ys = _ordered(ax), _ordered(by)

    def cell(x: Any, y: Any) -> float | None:
        vals = [
            r["latency_s"] * 1e3 for r, u, v in zip(ok, ax, by, strict=True) if u == x and v == y
        ]
        return statistics.median(vals) if vals else None

    z = [[cell(x, y) for x in xs] for y in ys]
    fig = go.Figure(
        go.Heatmap(
            x=[str(x) for x in xs],
            y=[str(y) for y in ys],
            z=z,
            colorbar={"title": "ms"},
            texttemplate="%{z:.3g}",
        )
    )
    fig.update_layout(
        title=f"Median latency (ms) over {a} and {b}", xaxis_title=a, yaxis_title=b, height=420
    )
    return fig


def _pareto(go: Any, ok: list[dict], params: Sequence[str]) -> Any:
    front = pareto_front(ok, "cost_proxy", "latency_s")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r["cost_proxy"] for r in ok],
            y=[r["latency_s"] * 1e3 for r in ok],
            mode="markers",
            name="points",
            text=[", ".join(f"{p}={r[p]}" for p in params) for r in ok],
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r["cost_proxy"] for r in front],
            y=[r["latency_s"] * 1e3 for r in front],
            mode="lines+markers",
            name="Pareto front",
            text=[", ".join(f"{p}={r[p]}" for p in params) for r in front],
        )
    )
    fig.update_layout(
        title="Pareto front: latency against cost proxy (ai_cores/base + HBM bandwidth/base)",
        xaxis_title="cost proxy (2.0 = base chip)",
        yaxis_title="latency (ms)",
        height=480,
    )
    return fig


def render_report(rows: Sequence[dict[str, Any]], params: Sequence[str], title: str) -> str:
    """The report page for ``rows`` (only ``ok`` rows are plotted; failures are listed)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ok = [r for r in rows if r.get("status") == "ok"]
    varied = _varied(ok, params)
    figs = []
    if ok and varied:
        figs.append(_sensitivity(go, make_subplots, ok, varied))
    if ok and len(varied) >= 2:
        figs.append(_heatmap(go, ok, varied[0], varied[1]))
    if ok:
        figs.append(_pareto(go, ok, params))
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(ok)} of {len(rows)} points succeeded. Parameters: "
        f"{html.escape(', '.join(params) or '(none)')}.</p>",
    ]
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        items = "".join(
            f"<li><code>{html.escape(r['key'])}</code> "
            f"({html.escape(', '.join(f'{p}={r.get(p)}' for p in params))}): "
            f"{html.escape(str(r.get('error', '')))}</li>"
            for r in failed
        )
        parts.append(f"<h2>Failed points</h2><ul>{items}</ul>")
    data = json.dumps(list(rows), sort_keys=True).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="sweep-data">{data}</script>')
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title></head><body style='font-family:sans-serif'>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def write_report(
    path: str | Path, rows: Sequence[dict[str, Any]], params: Sequence[str], title: str
) -> None:
    """Write :func:`render_report` to ``path`` atomically."""
    atomic_write_text(path, render_report(rows, params, title))
