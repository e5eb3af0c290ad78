"""Pictures and text of a plan: a plain-text summary, Graphviz dot, and a self-contained HTML
page whose inline SVG lays the stage graph out by topological generations (no network, no
graphviz binary needed)."""

from __future__ import annotations

import html
from collections import Counter

import networkx as nx

from hetnpu.devices.names import CPU, GPU, NPU, SIM_NPU
from hetnpu.scheduler.plan import ExecutionPlan

__all__ = ["DEVICE_COLOURS", "stage_macs", "summary", "to_dot", "to_html"]

DEVICE_COLOURS = {NPU: "#d9534f", SIM_NPU: "#f0ad4e", GPU: "#5cb85c", CPU: "#5bc0de"}
_HOST = "host"


def stage_macs(plan: ExecutionPlan) -> list[int]:
    """Multiply-accumulates of each stage's ops."""
    from hetnpu.graph.cost import node_cost

    g = plan.graph
    return [sum(node_cost(g, g.nodes[n]).macs for n in s.nodes) for s in plan.stages]


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _seconds(s: float | None) -> str:
    if s is None:
        return "n/a (no cost model)"
    return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} us"


def summary(plan: ExecutionPlan) -> str:
    """A multi-line text summary: stages, transfers, TransData, fallbacks, makespan."""
    macs = stage_macs(plan)
    lines = [
        f"model {plan.graph.model.graph.name!r}: {len(plan.assignment)} ops placed, "
        f"{len(plan.folded)} constant-folded; strategy {plan.strategy}",
        f"stages ({len(plan.stages)}):",
    ]
    for s, m in zip(plan.stages, macs, strict=True):
        ops = Counter(plan.graph.nodes[n].op_type for n in s.nodes).most_common(3)
        top = ", ".join(f"{op}x{k}" for op, k in ops)
        lines.append(f"  [{s.id}] {s.device:<7} {len(s.nodes):>5} ops  {m:>14,} MACs  ({top})")
    crossing = [t for t in plan.transfers if t.link != "local"]
    lines.append(f"transfers ({len(crossing)} across devices, {len(plan.transfers)} in all):")
    for t in crossing:
        src = "host" if t.src_stage is None else f"stage {t.src_stage}"
        dst = "host" if t.dst_stage is None else f"stage {t.dst_stage}"
        lines.append(
            f"  {t.tensor}: {src} ({t.src_device}) -> {dst} ({t.dst_device}), "
            f"{_bytes(t.nbytes)} over {t.link}"
        )
    lines.append(f"TransData inserted ({len(plan.transdata)}):")
    for d in plan.transdata:
        lines.append(
            f"  {d.tensor} in stage {d.stage}: {d.src_layout} -> {d.dst_layout}, {_bytes(d.nbytes)}"
        )
    lines.append(f"fallbacks ({len(plan.fallbacks)}):")
    for n, why in plan.fallbacks.items():
        lines.append(f"  {n}: {why}")
    lines.append(f"estimated makespan: {_seconds(plan.estimated_makespan_s)}")
    return "\n".join(lines)


def _edges(plan: ExecutionPlan) -> dict[tuple[str, str], tuple[int, int]]:
    """(from, to) -> (tensors, bytes), stages as "s<k>" and the host as "host"."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for t in plan.transfers:
        a = _HOST if t.src_stage is None else f"s{t.src_stage}"
        b = _HOST + "_out" if t.dst_stage is None else f"s{t.dst_stage}"
        k, nb = out.get((a, b), (0, 0))
        out[(a, b)] = (k + 1, nb + t.nbytes)
    return out


def to_dot(plan: ExecutionPlan) -> str:
    """The stage graph in Graphviz dot: a box per stage coloured by device, the host as the
    source of inputs and sink of outputs, edges labelled with tensor count and bytes."""
    name = plan.graph.model.graph.name.replace('"', "'")
    lines = [
        f'digraph "{name}" {{',
        "  rankdir=LR;",
        "  node [shape=box, style=filled];",
        '  host [label="host inputs", shape=ellipse, fillcolor="#eeeeee"];',
        '  host_out [label="host outputs", shape=ellipse, fillcolor="#eeeeee"];',
    ]
    for s in plan.stages:
        colour = DEVICE_COLOURS.get(s.device, "#cccccc")
        lines.append(
            f'  s{s.id} [label="stage {s.id}\\n{s.device}\\n{len(s.nodes)} ops", '
            f'fillcolor="{colour}"];'
        )
    for (a, b), (k, nb) in _edges(plan).items():
        lines.append(f'  {a} -> {b} [label="{k} tensor(s), {_bytes(nb)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 150, 54, 70, 24, 20


def _layout(plan: ExecutionPlan) -> dict[str, tuple[float, float]]:
    dag = nx.DiGraph()
    dag.add_node(_HOST)
    dag.add_node(_HOST + "_out")
    dag.add_nodes_from(f"s{s.id}" for s in plan.stages)
    dag.add_edges_from(_edges(plan))
    pos = {}
    for col, gen in enumerate(nx.topological_generations(dag)):
        for row, v in enumerate(sorted(gen, key=lambda v: (v.startswith("host"), v))):
            pos[v] = (_MARGIN + col * (_BOX_W + _GAP_X), _MARGIN + row * (_BOX_H + _GAP_Y))
    return pos


def _svg(plan: ExecutionPlan) -> str:
    pos = _layout(plan)
    width = max(x for x, _ in pos.values()) + _BOX_W + _MARGIN
    height = max(y for _, y in pos.values()) + _BOX_H + _MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for (a, b), (k, nb) in _edges(plan).items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy, ex, ey = x1 + _BOX_W, y1 + _BOX_H / 2, x2, y2 + _BOX_H / 2
        tip = html.escape(f"{k} tensor(s), {_bytes(nb)}")
        parts.append(
            f'<line x1="{sx}" y1="{sy}" x2="{ex}" y2="{ey}" stroke="#555" '
            f'marker-end="url(#arrow)"><title>{tip}</title></line>'
        )
    boxes = [(_HOST, "host inputs", "#eeeeee", ""), (_HOST + "_out", "host outputs", "#eeeeee", "")]
    for s in plan.stages:
        ops = ", ".join(
            f"{op}x{k}"
            for op, k in Counter(plan.graph.nodes[n].op_type for n in s.nodes).most_common(6)
        )
        boxes.append(
            (
                f"s{s.id}",
                f"stage {s.id}: {s.device}",
                DEVICE_COLOURS.get(s.device, "#ccc"),
                f"{len(s.nodes)} ops: {ops}",
            )
        )
    for key, title, colour, detail in boxes:
        x, y = pos[key]
        parts.append(
            f"<g><title>{html.escape(detail or title)}</title>"
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="{colour}" '
            f'stroke="#333"/><text x="{x + 8}" y="{y + 20}" font-weight="bold">'
            f"{html.escape(title)}</text>"
            f'<text x="{x + 8}" y="{y + 40}">{html.escape(detail.split(":")[0])}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def to_html(plan: ExecutionPlan) -> str:
    """A self-contained HTML page: the stage graph as inline SVG, a legend and the summary."""
    legend = " ".join(
        f'<span style="background:{c};padding:2px 8px;margin-right:6px">{html.escape(d)}</span>'
        for d, c in DEVICE_COLOURS.items()
    )
    title = html.escape(f"hetnpu partition: {plan.graph.model.graph.name}")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f'<title>{title}</title></head>\n<body style="font-family:sans-serif">\n'
        f"<h1>{title}</h1>\n<p>{legend}</p>\n{_svg(plan)}\n"
        f"<pre>{html.escape(summary(plan))}</pre>\n</body></html>\n"
    )
