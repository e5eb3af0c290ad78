"""The sweep's HTML page: sensitivity of each metric to each parameter, and the Pareto front.

One self-contained file (plotly's JavaScript inlined), readable offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hetnpu.atomic import atomic_write_text

__all__ = ["cost_proxy", "pareto_front", "write_report"]


def cost_proxy(row: dict[str, Any], base: dict[str, Any]) -> float:
    """Resources a point spends, relative to the base chip: cores plus memory bandwidth.

    ``ai_cores / base_ai_cores + hbm_bytes_per_s / base_hbm_bytes_per_s``: 2.0 for the base chip.
    A proxy for silicon area and memory cost, not a price.
    """
    return row["ai_cores"] / base["ai_cores"] + row["hbm_bytes_per_s"] / base["hbm_bytes_per_s"]


def pareto_front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """Rows no other row beats on both ``x`` and ``y`` (lower is better), sorted by ``x``."""
    ordered = sorted(rows, key=lambda r: (r[x], r[y]))
    front: list[dict[str, Any]] = []
    best = float("inf")
    for r in ordered:
        if r[y] < best:
            front.append(r)
            best = r[y]
    return front


def write_report(
    path: str | Path,
    rows: Sequence[dict[str, Any]],
    params: Sequence[str],
    base: dict[str, Any],
    title: str,
) -> None:
    """Write the sweep report for the ``ok`` rows."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ok = [dict(r, cost_proxy=cost_proxy(r, base)) for r in rows if r.get("status") == "ok"]
    numeric = [p for p in params if ok and all(isinstance(r.get(p), int | float) for r in ok)]
    parts = [f"<h1>{title}</h1>", f"<p>{len(ok)} of {len(rows)} points succeeded.</p>"]
    if ok and numeric:
        fig = make_subplots(rows=1, cols=len(numeric), subplot_titles=numeric, shared_yaxes=True)
        for i, p in enumerate(numeric, start=1):
            fig.add_trace(
                go.Scatter(
                    x=[r[p] for r in ok],
                    y=[r["latency_s"] * 1e3 for r in ok],
                    mode="markers",
                    name=p,
                    text=[r["key"] for r in ok],
                    showlegend=False,
                ),
                row=1,
                col=i,
            )
            fig.update_xaxes(
                type="log"
                if max(r[p] for r in ok) > 100 * max(min(r[p] for r in ok), 1e-30)
                else "linear",
                row=1,
                col=i,
            )
        fig.update_yaxes(title_text="latency (ms)", row=1, col=1)
        fig.update_layout(title="Sensitivity: latency against each parameter", height=420)
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline"))
    if ok:
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
            )
        )
        fig.update_layout(
            title="Pareto front: latency against resources (cores/base + bandwidth/base)",
            xaxis_title="cost proxy",
            yaxis_title="latency (ms)",
            height=480,
        )
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs="inline" if not numeric else False)
        )
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        items = "".join(f"<li><code>{r['key']}</code>: {r.get('error', '')}</li>" for r in failed)
        parts.append(f"<h2>Failed points</h2><ul>{items}</ul>")
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        + title
        + "</title></head><body style='font-family:sans-serif'>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    atomic_write_text(path, html)
