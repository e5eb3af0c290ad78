"""One self-contained HTML page for a trace: timeline, unit utilisation, roofline, memory
traffic and a sortable op table.

The plotly.js bundle is inlined (no network at view time) and figures are drawn by
``Plotly.newPlot`` from JSON embedded in the page. Once every figure is drawn, the page writes
``data-ready``, ``data-op-bars`` (bars drawn in the op timeline), ``data-ops`` (ops in the
trace), ``data-render-ms`` and ``data-js-errors`` (every ``window.onerror`` message, JSON) on
``<body>``, so a headless browser can check it with ``--dump-dom``.

Left out: per-instruction bars (the timeline shows each op on its device and each op's span on
each core; the instructions are for Perfetto), and zoom-synchronised figures.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from hetnpu.atomic import atomic_write_text
from hetnpu.traces.attribution import COLOURS
from hetnpu.traces.breakdown import critical_path, time_by_mechanism, time_by_type, top_ops
from hetnpu.traces.read import Trace, read_trace
from hetnpu.traces.summary import OP_COLUMNS, op_summary, unit_utilisation

__all__ = ["render_report", "write_report"]

_HEAD_JS = """window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.__t0 = performance.now();"""

_TAIL_JS = """(function () {
  var figs = JSON.parse(document.getElementById('figures').textContent);
  var jobs = [];
  Object.keys(figs).forEach(function (id) {
    var f = figs[id];
    jobs.push(Plotly.newPlot(id, f.data, f.layout, {responsive: true, displaylogo: false}));
  });
  Promise.all(jobs).then(function () {
    var tl = document.getElementById('timeline');
    var nOpTraces = figs.timeline.data.filter(function (t) { return t.meta === 'op'; }).length;
    var bars = tl.querySelectorAll('.barlayer .trace.bars');
    var n = 0;
    for (var i = 0; i < nOpTraces && i < bars.length; i++) {
      n += bars[i].querySelectorAll('.point').length;
    }
    var b = document.body;
    b.setAttribute('data-op-bars', String(n));
    b.setAttribute('data-render-ms', String(Math.round(performance.now() - window.__t0)));
    b.setAttribute('data-js-errors', JSON.stringify(window.__errors));
    b.setAttribute('data-ready', '1');
  }).catch(function (e) {
    window.__errors.push(String(e));
    document.body.setAttribute('data-js-errors', JSON.stringify(window.__errors));
    document.body.setAttribute('data-ready', '1');
  });
  document.querySelectorAll('table.sortable th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = th.closest('table').tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-dir') !== 'asc';
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();"""

_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}
table.sortable{border-collapse:collapse;font-size:12px}
table.sortable th{cursor:pointer;background:#eee;position:sticky;top:0}
table.sortable td,table.sortable th{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.sortable td:nth-child(-n+3){text-align:left}
.fig{width:100%;min-height:320px}"""


# The trace's catapult colour names as CSS colours, so page and trace agree.
_MECH_COLOUR = {
    **{
        m: {
            "good": "#4c9a2a",
            "olive": "#808000",
            "thread_state_iowait": "#e08a1e",
            "grey": "#888888",
            "yellow": "#d4b000",
            "terrible": "#c0392b",
        }[c]
        for m, c in COLOURS.items()
    },
    "other": "#bbbbbb",
}


def _natural(s: str) -> tuple[Any, ...]:
    # "core2" before "core10".
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


def _timeline(tr: Trace) -> go.Figure:
    fig = go.Figure()
    t0 = min((o.start_us for o in tr.ops), default=0.0)
    by_dev: dict[str, list[Any]] = defaultdict(list)
    by_type: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for o in tr.ops:
        by_dev[o.device].append(o)
        by_type[(o.device, o.op_type)].append(o)
    # One bar trace per (device, op type): the legend names the types, plotly colours them.
    for (dev, op_type), ops in sorted(by_type.items()):
        fig.add_trace(
            go.Bar(
                name=f"{op_type or '?'}" if len(by_dev) == 1 else f"{dev}: {op_type or '?'}",
                legendgroup=op_type,
                meta="op",
                orientation="h",
                y=[dev] * len(ops),
                base=[round(o.start_us - t0, 6) for o in ops],
                x=[o.dur_us for o in ops],
                text=[o.name for o in ops],
                customdata=[[o.op_type, o.mechanism or o.bound or "-"] for o in ops],
                hovertemplate="%{text} (%{customdata[0]})<br>start %{base} µs, "
                "%{x} µs<br>%{customdata[1]}<extra></extra>",
                textposition="none",
            )
        )
    # Each core's part of each op: the union of its unit spans for that op.
    spans: dict[tuple[str, str], list[float]] = {}
    for u in tr.units:
        s = spans.setdefault((u.lane, u.op), [u.start_us, u.start_us + u.dur_us])
        s[0], s[1] = min(s[0], u.start_us), max(s[1], u.start_us + u.dur_us)
    if spans:
        keys = sorted(spans, key=lambda k: (_natural(k[0]), spans[k][0]))
        fig.add_trace(
            go.Bar(
                name="cores",
                meta="core",
                orientation="h",
                y=[k[0] for k in keys],
                base=[round(spans[k][0] - t0, 6) for k in keys],
                x=[round(spans[k][1] - spans[k][0], 6) for k in keys],
                text=[k[1] for k in keys],
                hovertemplate="%{y}: %{text}<br>start %{base} µs, %{x} µs<extra></extra>",
                textposition="none",
                marker_color="#999",
            )
        )
    lanes = len({*by_dev, *(k[0] for k in spans)})
    fig.update_layout(
        title="Timeline (µs)",
        barmode="overlay",
        height=max(300, 22 * lanes + 120),
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"title": "µs from the first op"},
    )
    return fig


def _utilisation(tr: Trace) -> go.Figure:
    rows = unit_utilisation(tr)
    fig = go.Figure()
    for dev in sorted({r["device"] for r in rows}):
        mine = [r for r in rows if r["device"] == dev]
        fig.add_trace(
            go.Bar(name=dev, x=[r["unit"] for r in mine], y=[r["utilisation"] for r in mine])
        )
    fig.update_layout(title="Unit utilisation (busy / wall × lanes)", yaxis_tickformat=".0%")
    return fig


def _roofline(tr: Trace) -> go.Figure:
    pts = [o for o in tr.ops if o.flops > 0 and o.bytes > 0 and o.dur_us > 0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="ops",
            mode="markers",
            x=[o.flops / o.bytes for o in pts],
            y=[o.flops_per_s for o in pts],
            text=[f"{o.name} ({o.op_type})" for o in pts],
            hovertemplate="%{text}<br>%{x:.3g} FLOP/B, %{y:.3g} FLOP/s<extra></extra>",
        )
    )
    meta = tr.meta
    peak = float(meta.get("peak_flops") or 0)
    if peak and pts:
        xs = [o.flops / o.bytes for o in pts]
        lo, hi = min(xs) / 2, max(xs) * 2
        for key, label in (("hbm_bytes_per_s", "HBM"), ("l2_bytes_per_s", "L2")):
            bw = float(meta.get(key) or 0)
            if bw:
                knee = peak / bw
                x = sorted({lo, min(max(knee, lo), hi), hi})
                fig.add_trace(
                    go.Scatter(
                        name=f"roof ({label} {bw / 1e9:.0f} GB/s)",
                        mode="lines",
                        x=x,
                        y=[min(peak, bw * v) for v in x],
                    )
                )
    fig.update_layout(
        title="Roofline: achieved FLOP/s against FLOP per byte moved to or from GM",
        xaxis={"type": "log", "title": "FLOP per GM byte (HBM + L2)"},
        yaxis={"type": "log", "title": "FLOP/s"},
    )
    return fig


def _traffic(tr: Trace) -> go.Figure:
    levels = tr.meta.get("bytes_by_level") or {}
    fig = go.Figure(go.Bar(x=list(levels), y=[levels[k] for k in levels], name="bytes"))
    fig.update_layout(
        title="Memory-level traffic (bytes written into each level; HBM and L2 read + write)"
        if levels
        else "Memory-level traffic: not recorded in this trace",
        yaxis_title="bytes",
    )
    return fig


def _cell(v: Any) -> str:
    if v is None:
        return '<td data-v="">-</td>'
    shown = f"{v:.4g}" if isinstance(v, float) else str(v)
    return f'<td data-v="{html.escape(str(v))}">{html.escape(shown)}</td>'


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in OP_COLUMNS)
    body = "\n".join("<tr>" + "".join(_cell(r[c]) for c in OP_COLUMNS) + "</tr>" for r in rows)
    return (
        f'<table class="sortable" id="ops"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table>"
    )


_MECH_LABEL = {
    "cube": "Cube",
    "vector": "Vector",
    "memory": "MTE (memory)",
    "dispatch": "dispatch (kernel launch)",
    "sync": "sync (latency, flags)",
    "layout": "layout conversion (TransData)",
    "other": "other (not attributed)",
}


def _share(v: float) -> str:
    return f'<td data-v="{v!r}">{v:.1%}</td>'


def _plain_table(table_id: str, head: list[str], rows: list[list[Any]]) -> str:
    """A sortable table; ``share`` columns show percentages (``data-v`` keeps the fraction)."""
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "\n".join(
        "<tr>"
        + "".join(_share(v) if h == "share" else _cell(v) for h, v in zip(head, r, strict=True))
        + "</tr>"
        for r in rows
    )
    return (
        f'<table class="sortable" id="{table_id}"><thead><tr>{cells}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def _where(tr: Trace) -> tuple[str, dict[str, Any], go.Figure]:
    """The page's opening: time by mechanism and by op type, the critical path, the ten ops
    that matter most (HTML, the same numbers as JSON, and a bar figure)."""
    mech = time_by_mechanism(tr)
    total = sum(mech.values()) or 1.0
    types = time_by_type(tr)
    path = critical_path(tr)
    top = top_ops(tr, 10)
    summary = {
        "total_us": sum(mech.values()),
        "by_mechanism_us": mech,
        "by_type": types,
        "critical_path": path,
        "top_ops": top,
    }
    shown = [(m, us) for m, us in mech.items() if us > 0]
    fig = go.Figure(
        go.Bar(
            x=[us for _m, us in shown],
            y=[_MECH_LABEL[m] for m, _us in shown],
            orientation="h",
            text=[f"{us / total:.1%}" for _m, us in shown],
            marker_color=[_MECH_COLOUR[m] for m, _us in shown],
            name="µs",
        )
    )
    fig.update_layout(
        title="Where the time went, by mechanism (µs)",
        height=max(240, 40 * len(shown) + 120),
        yaxis={"autorange": "reversed"},
    )
    by_mech = _plain_table(
        "by-mechanism",
        ["mechanism", "µs", "share"],
        [[_MECH_LABEL[m], round(us, 6), us / total] for m, us in shown],
    )
    by_type = _plain_table(
        "by-type",
        ["op type", "ops", "µs", "share", "mechanism"],
        [[r["type"], r["ops"], round(r["us"], 6), r["share"], r["mechanism"]] for r in types],
    )
    top_table = _plain_table(
        "top-ops",
        ["op", "type", "device", "µs", "share", "mechanism"],
        [
            [r["op"], r["type"], r["device"], round(r["us"], 6), r["share"], r["mechanism"]]
            for r in top
        ],
    )
    path_types = ", ".join(f"{t} {us:.4g} µs" for t, us in path["by_type"][:5])
    text = (
        "<h2>Where the time went</h2>\n"
        f'<div id="mechanisms" class="fig"></div>\n{by_mech}\n'
        f"<h3>By op type</h3>\n{by_type}\n"
        f'<h3>Critical path</h3>\n<p id="critical-path" data-ops="{len(path["ops"])}" '
        f'data-busy-us="{path["busy_us"]!r}" data-idle-us="{path["idle_us"]!r}">'
        f"{len(path['ops'])} ops set the run's length: {path['busy_us']:.6g} µs busy, "
        f"{path['idle_us']:.6g} µs idle between them; "
        f"{html.escape(path_types)}.</p>\n"
        f"<h3>The ten ops that matter most</h3>\n{top_table}\n"
    )
    return text, summary, fig


def render_report(source: Any, title: str | None = None) -> str:
    """The HTML page for a trace (a :class:`Trace` or anything :func:`read_trace` reads)."""
    tr = source if isinstance(source, Trace) else read_trace(source)
    opening, summary, mech_fig = _where(tr)
    figs = {
        "mechanisms": mech_fig,
        "timeline": _timeline(tr),
        "utilisation": _utilisation(tr),
        "roofline": _roofline(tr),
        "traffic": _traffic(tr),
    }
    # "</" cannot end the JSON's script element early once escaped.
    payload = json.dumps(
        {k: json.loads(f.to_json()) for k, f in figs.items()}, sort_keys=True
    ).replace("</", "<\\/")
    meta = tr.meta
    name = title or f"hetnpu report: {meta.get('chip', tr.kind)}"
    facts = (
        f"{len(tr.ops)} ops, {tr.wall_us:.6g} µs from first start to last end; trace kind "
        f"{tr.kind}; level {meta.get('level', '-')}; precision {meta.get('precision', '-')}"
    )
    divs = "\n".join(f'<div id="{k}" class="fig"></div>' for k in figs if k != "mechanisms")
    summary_json = json.dumps(summary, sort_keys=True).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(name)}</title><style>{_CSS}</style>"
        f"<script>{_HEAD_JS}</script><script>{get_plotlyjs()}</script></head>\n"
        f'<body data-ops="{len(tr.ops)}"><h1>{html.escape(name)}</h1>'
        f"<p>{html.escape(facts)}</p>\n{opening}<h2>Timeline and units</h2>\n{divs}\n"
        "<h2>Ops (click a header to sort)</h2>\n"
        f"{_table(op_summary(tr))}\n"
        f'<script type="application/json" id="figures">{payload}</script>\n'
        f'<script type="application/json" id="summary">{summary_json}</script>\n'
        f"<script>{_TAIL_JS}</script></body></html>\n"
    )


def write_report(source: Any, path: str | os.PathLike[str], title: str | None = None) -> int:
    """Write :func:`render_report` to ``path`` atomically; return its size in bytes."""
    text = render_report(source, title)
    atomic_write_text(path, text)
    return len(text.encode("utf-8"))
