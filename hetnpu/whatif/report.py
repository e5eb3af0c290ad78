"""The sweep's HTML page: sensitivity of latency and throughput to each parameter, a heatmap
over the first two varied parameters, and Pareto fronts against a cost proxy (latency per batch
size, throughput over all points); parameter values in human units (2.4 TB/s, 256 KiB).

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

__all__ = ["human", "pareto_front", "render_report", "write_report"]


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


_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((1 << 40, "Ti"), (1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki"))
_SECONDS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


# A headless browser reads these from <body> (``--dump-dom``): plots drawn, script errors.
_HEAD_JS = (
    "window.__errors = []; window.addEventListener('error', "
    "function (e) { window.__errors.push(String(e.message)); });"
)
_TAIL_JS = """window.addEventListener('load', function () { setTimeout(function () {
  var b = document.body;
  b.setAttribute('data-plots', String(document.querySelectorAll('.js-plotly-plot').length));
  b.setAttribute('data-js-errors', JSON.stringify(window.__errors));
  b.setAttribute('data-ready', '1');
}, 0); });"""


def human(param: str, value: Any) -> str:
    """``value`` of parameter ``param`` in the unit its name carries, scaled for reading.

    Rates (``*_per_s``) and clocks (``*_hz``) take SI prefixes, sizes (``*_bytes``) binary
    ones, times (``*_s``) s/ms/µs/ns; anything else prints as is.

    >>> human("hbm_bytes_per_s", 2.4e12), human("ub_bytes", 262144), human("clock_hz", 1.8e9)
    ('2.4 TB/s', '256 KiB', '1.8 GHz')
    >>> human("task_launch_s", 4e-06), human("ai_cores", 32), human("devices", "npu+cpu")
    ('4 µs', '32', 'npu+cpu')
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if param.endswith("_per_s") or param.endswith("_hz"):
        unit = "B/s" if param.endswith("bytes_per_s") else ("Hz" if param.endswith("_hz") else "/s")
        scale, prefix = next(((f, p) for f, p in _SI if abs(value) >= f), (1, ""))
        return f"{value / scale:.4g} {prefix}{unit}"
    if param.endswith("_bytes"):
        scale, prefix = next(((f, p) for f, p in _BINARY if abs(value) >= f), (1, ""))
        return f"{value / scale:.4g} {prefix}B"
    if param.endswith("_s") and value:
        scale, unit = next(((f, u) for f, u in _SECONDS if abs(value) >= f), _SECONDS[-1])
        return f"{value / scale:.4g} {unit}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _label(r: dict[str, Any], params: Sequence[str]) -> str:
    return ", ".join(f"{p}={human(p, r.get(p))}" for p in params)


_METRICS = (
    ("latency_s", "latency (ms)", 1e3),
    ("throughput_per_s", "throughput (inferences/s)", 1.0),
)


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
    """Latency and throughput against each parameter: one column per parameter, a row per
    metric (throughput compares across batch sizes, latency does not)."""
    metrics = [m for m in _METRICS if all(m[0] in r for r in ok)]
    fig = make_subplots(
        rows=len(metrics),
        cols=len(varied),
        subplot_titles=[
            f"{label.split(' (')[0]} vs {p}" for _k, label, _s in metrics for p in varied
        ],
    )
    for row, (key, label, scale) in enumerate(metrics, 1):
        for col, p in enumerate(varied, 1):
            numeric = _numeric(ok, p)
            xs = [r_[p] if numeric else str(r_[p]) for r_ in ok]
            # Every point, and the median over the other parameters at each value.
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[r_[key] * scale for r_ in ok],
                    mode="markers",
                    marker={"opacity": 0.5},
                    name=f"{p}: points",
                    text=[_label(r_, varied) for r_ in ok],
                    showlegend=False,
                ),
                row=row,
                col=col,
            )
            values = _ordered(xs)
            med = [
                statistics.median(r_[key] * scale for r_, x in zip(ok, xs, strict=True) if x == v)
                for v in values
            ]
            fig.add_trace(
                go.Scatter(
                    x=values, y=med, mode="lines+markers", name=f"{p}: median", showlegend=False
                ),
                row=row,
                col=col,
            )
            if numeric:
                fig.update_xaxes(
                    tickvals=values, ticktext=[human(p, v) for v in values], row=row, col=col
                )
                if min(values) > 0 and max(values) / min(values) >= 8:
                    fig.update_xaxes(type="log", row=row, col=col)
            fig.update_yaxes(title_text=label, row=row, col=col)
    fig.update_layout(
        title="Sensitivity: latency and throughput against each parameter "
        "(dots: points; line: median over the others)",
        height=340 * len(metrics),
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
            x=[human(a, x) for x in xs],
            y=[human(b, y) for y in ys],
            z=z,
            colorbar={"title": "ms"},
            texttemplate="%{z:.3g}",
        )
    )
    fig.update_layout(
        title=f"Median latency (ms) over {a} and {b}", xaxis_title=a, yaxis_title=b, height=420
    )
    return fig


def _pareto(go: Any, make_subplots: Any, ok: list[dict], params: Sequence[str]) -> Any:
    """Pareto fronts against the cost proxy: latency per batch size (a batch of 8 is slower
    than a batch of 1 on any chip, so only points of one batch size compare), and throughput
    over all points (higher is better)."""
    batches = sorted({r.get("batch") for r in ok}, key=lambda b: (b is None, b))
    has_tp = all("throughput_per_s" in r for r in ok)
    fig = make_subplots(
        rows=1,
        cols=2 if has_tp else 1,
        subplot_titles=["latency per batch size (lower is better)"]
        + (["throughput (higher is better)"] if has_tp else []),
    )
    fig.add_trace(
        go.Scatter(
            x=[r["cost_proxy"] for r in ok],
            y=[r["latency_s"] * 1e3 for r in ok],
            mode="markers",
            name="points",
            marker={"color": "#bbb"},
            text=[_label(r, params) for r in ok],
        ),
        row=1,
        col=1,
    )
    for b in batches:
        mine = [r for r in ok if r.get("batch") == b]
        front = pareto_front(mine, "cost_proxy", "latency_s")
        fig.add_trace(
            go.Scatter(
                x=[r["cost_proxy"] for r in front],
                y=[r["latency_s"] * 1e3 for r in front],
                mode="lines+markers",
                name="Pareto front" + (f", batch {b}" if b is not None else ""),
                text=[_label(r, params) for r in front],
            ),
            row=1,
            col=1,
        )
    if has_tp:
        neg = [{**r, "_neg_tp": -r["throughput_per_s"]} for r in ok]
        front = pareto_front(neg, "cost_proxy", "_neg_tp")
        fig.add_trace(
            go.Scatter(
                x=[r["cost_proxy"] for r in ok],
                y=[r["throughput_per_s"] for r in ok],
                mode="markers",
                name="points (throughput)",
                marker={"color": "#bbb"},
                text=[_label(r, params) for r in ok],
                showlegend=False,
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            go.Scatter(
                x=[r["cost_proxy"] for r in front],
                y=[r["throughput_per_s"] for r in front],
                mode="lines+markers",
                name="Pareto front, throughput",
                text=[_label(r, params) for r in front],
            ),
            row=1,
            col=2,
        )
        fig.update_yaxes(title_text="inferences/s", row=1, col=2)
    fig.update_xaxes(title_text="cost proxy (2.0 = base chip)")
    fig.update_yaxes(title_text="latency (ms)", row=1, col=1)
    fig.update_layout(
        title="Pareto fronts against the cost proxy (ai_cores/base + HBM bandwidth/base)",
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
        figs.append(_pareto(go, make_subplots, ok, params))
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
            f"({html.escape(_label(r, params))}): "
            f"{html.escape(str(r.get('error', '')))}</li>"
            for r in failed
        )
        parts.append(f"<h2>Failed points</h2><ul>{items}</ul>")
    data = json.dumps(list(rows), sort_keys=True).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="sweep-data">{data}</script>')
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + f"</title><script>{_HEAD_JS}</script></head><body style='font-family:sans-serif'>"
        + "\n".join(parts)
        + f"<script>{_TAIL_JS}</script></body></html>\n"
    )


def write_report(
    path: str | Path, rows: Sequence[dict[str, Any]], params: Sequence[str], title: str
) -> None:
    """Write :func:`render_report` to ``path`` atomically."""
    atomic_write_text(path, render_report(rows, params, title))
