"""The sweep report compares like with like: throughput beside latency, a Pareto front per batch
size, parameters in human units; and it renders in headless Chromium."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from hetnpu.whatif import run_sweep
from hetnpu.whatif.report import _pareto, _sensitivity, human, pareto_front, write_report
from tests.support.browser import body_attrs, dump_dom
from tests.traces.test_report import find_chromium

GRID = {"batch": [1, 4], "hbm_bytes_per_s": [0.6e12, 2.4e12]}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [r for r in run_sweep("mlp", grid=GRID, workers=1) if r["status"] == "ok"]


@pytest.mark.parametrize(
    ("param", "value", "text"),
    [
        ("hbm_bytes_per_s", 2.4e12, "2.4 TB/s"),
        ("hbm_bytes_per_s", 6e11, "600 GB/s"),
        ("l2_bytes", 96 * 2**20, "96 MiB"),
        ("ub_bytes", 262144, "256 KiB"),
        ("clock_hz", 1.5e9, "1.5 GHz"),
        ("task_launch_s", 4e-06, "4 µs"),
        ("stream_switch_s", 0.0025, "2.5 ms"),
        ("ai_cores", 20, "20"),
        ("double_buffer", True, "True"),
    ],
)
def test_parameters_read_in_human_units(param, value, text) -> None:
    assert human(param, value) == text


def test_latency_fronts_are_per_batch_and_throughput_is_across(rows) -> None:
    assert {r["batch"] for r in rows} == {1, 4}
    fig = _pareto(go, make_subplots, rows, list(GRID))
    fronts = {t.name: t for t in fig.data if t.name and t.name.startswith("Pareto front")}
    assert set(fronts) == {
        "Pareto front, batch 1",
        "Pareto front, batch 4",
        "Pareto front, throughput",
    }
    for b in (1, 4):
        mine = [r for r in rows if r["batch"] == b]
        want = pareto_front(mine, "cost_proxy", "latency_s")
        got = fronts[f"Pareto front, batch {b}"]
        assert list(got.y) == [r["latency_s"] * 1e3 for r in want]
    # Throughput: no point has both a lower cost and a higher throughput than a front point.
    tp = fronts["Pareto front, throughput"]
    for x, y in zip(tp.x, tp.y, strict=True):
        assert not any(r["cost_proxy"] <= x and r["throughput_per_s"] > y for r in rows)
    assert max(tp.y) == max(r["throughput_per_s"] for r in rows)
    # Hover labels speak in units.
    assert any("2.4 TB/s" in t for t in fronts["Pareto front, batch 1"].text)


def test_sensitivity_shows_throughput_and_human_ticks(rows) -> None:
    fig = _sensitivity(go, make_subplots, rows, list(GRID))
    titles = [a.text for a in fig.layout.annotations]
    assert "latency vs hbm_bytes_per_s" in titles and "throughput vs batch" in titles
    ticktexts = [
        tuple(fig.layout[k].ticktext)
        for k in fig.layout
        if k.startswith("xaxis") and fig.layout[k].ticktext
    ]
    assert ("600 GB/s", "2.4 TB/s") in ticktexts
    # Throughput points are the rows' own.
    tp = [t for t in fig.data if t.mode == "markers" and t.yaxis in ("y3", "y4")]
    assert sorted(tp[0].y) == sorted(r["throughput_per_s"] for r in rows)


def test_sweep_report_renders_in_headless_chromium(rows, tmp_path) -> None:
    chromium = find_chromium()
    page = tmp_path / "report.html"
    write_report(page, rows, list(GRID), "sweep")
    dom = dump_dom(chromium, page, tmp_path / "profile")
    body = body_attrs(dom)
    assert body.get("data-ready") == "1"
    assert json.loads(body["data-js-errors"] or "null") == []
    assert body["data-plots"] == "3"  # sensitivity, heatmap, Pareto
    # The drawn labels (SVG text) read in units, never as raw bytes per second.
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", dom)
    assert "2.4 TB/s" in labels and "600 GB/s" in labels
    assert not [t for t in labels if "2400000000000" in t or "e+12" in t or "2.4T" in t]
