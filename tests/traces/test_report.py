"""The HTML report: self-contained, and rendered in headless Chromium without JavaScript errors,
with one timeline bar per op."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from hetnpu.cli import main
from hetnpu.traces.chrome import write_chrome_trace
from tests.support.browser import body_attrs, dump_dom, screenshot
from tests.traces._models import runtime_like_trace

NO_BROWSER_ENV = "HETNPU_NO_BROWSER"
CHROMIUM_NEEDED = "chromium is needed: .ci/run installs it (apt-get install chromium)"


def find_chromium() -> str:
    """Debian's chromium from PATH. A test run never installs system packages (.ci/run does,
    before the tests), so a missing browser fails the rendering tests, unless the environment
    opts out of them with HETNPU_NO_BROWSER=1, which skips them with the same reason."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get(NO_BROWSER_ENV) == "1":
        pytest.skip(f"{CHROMIUM_NEEDED}; skipped because {NO_BROWSER_ENV}=1")
    pytest.fail(f"{CHROMIUM_NEEDED}; or set {NO_BROWSER_ENV}=1 to skip the browser tests")


@pytest.fixture(scope="session")
def chromium() -> str:
    return find_chromium()


def test_a_missing_chromium_fails_unless_browser_tests_are_opted_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fixture's two outcomes without a browser, so neither can regress into a silent skip
    # (or an install) on a machine that happens to have chromium.
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv(NO_BROWSER_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=re.escape(CHROMIUM_NEEDED)):
        find_chromium()
    monkeypatch.setenv(NO_BROWSER_ENV, "0")
    with pytest.raises(pytest.fail.Exception):
        find_chromium()
    monkeypatch.setenv(NO_BROWSER_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match=re.escape(CHROMIUM_NEEDED)):
        find_chromium()


def _report(sim, tmp_path: Path, level: str) -> tuple[Path, int]:
    trace = tmp_path / f"{level}.json"
    write_chrome_trace(sim.result, trace, level, graph=sim.graph, spec=sim.spec)
    out = tmp_path / f"{level}.html"
    assert main(["report", str(trace), "-o", str(out)]) == 0
    events = json.loads(trace.read_text())["traceEvents"]
    return out, sum(e["ph"] == "X" and e.get("cat") == "op" for e in events)


def test_report_is_self_contained(sim, tmp_path) -> None:
    out, n_ops = _report(sim, tmp_path, "op")
    text = out.read_text()
    # Nothing is fetched at view time: no element loads a URL.
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", text)
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # the bundle is inlined
    assert f'data-ops="{n_ops}"' in text
    assert all(f'id="{k}"' in text for k in ("timeline", "utilisation", "roofline", "traffic"))
    ops_table = text[text.index('<table class="sortable" id="ops">') :]
    assert ops_table[: ops_table.index("</table>")].count("<tr><td") == n_ops


@pytest.mark.parametrize("level", ["op", "instr"])
def test_report_renders_in_headless_chromium(sim, tmp_path, chromium, level) -> None:
    out, n_ops = _report(sim, tmp_path, level)
    profile = tmp_path / "chrome-profile"
    shot = tmp_path / "shot.png"
    screenshot(chromium, out, profile, shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = dump_dom(chromium, out, profile)
    body = body_attrs(dom)
    assert body.get("data-ready") == "1", dom[:500]
    assert json.loads(body["data-js-errors"] or "null") == []
    assert int(body["data-op-bars"] or -1) == n_ops == 4  # TransData:X, conv1, conv2, mul


def test_report_of_a_measured_runtime_trace_renders(tmp_path, chromium) -> None:
    trace = tmp_path / "rt.json"
    trace.write_text(json.dumps(runtime_like_trace()))
    out = tmp_path / "rt.html"
    assert main(["report", str(trace), "-o", str(out)]) == 0
    body = body_attrs(dump_dom(chromium, out, tmp_path / "p"))
    assert body.get("data-ready") == "1"
    assert json.loads(body["data-js-errors"] or "null") == []
    assert body["data-op-bars"] == "4"  # two ops on each of two devices


def _summary(page: str) -> dict:
    return json.loads(re.search(r'id="summary">(.*?)</script>', page, re.S).group(1))


def _cells(page: str, table_id: str) -> list[list[str]]:
    table = page[page.index(f'id="{table_id}"') :]
    table = table[: table.index("</table>")]
    return [re.findall(r'data-v="([^"]*)"', row) for row in table.split("<tr>")[2:]]


def test_report_opens_with_where_the_time_went_and_its_numbers_are_the_results(
    sim_launch, tmp_path
) -> None:
    from hetnpu.traces.attribution import op_mechanism, result_time_parts
    from hetnpu.traces.report import render_report

    sim = sim_launch
    res = sim.result
    trace = tmp_path / "t.json"
    write_chrome_trace(res, trace, "op", graph=sim.graph)
    page = render_report(trace)
    # The opening comes before the timeline.
    assert page.index("Where the time went") < page.index('id="timeline"')
    s = _summary(page)
    us = 1e6 / res.clock_hz
    parts = result_time_parts(res.ops)
    assert s["total_us"] == pytest.approx(sum(parts.values()) * us, rel=1e-9)
    for m, cycles in parts.items():
        assert s["by_mechanism_us"][m] == pytest.approx(cycles * us, abs=1e-5), m
    # The visible table shows the same µs and shares.
    shown = {row[0]: (float(row[1]), float(row[2])) for row in _cells(page, "by-mechanism")}
    assert len(shown) == sum(1 for c in parts.values() if c)
    assert sum(v[0] for v in shown.values()) == pytest.approx(s["total_us"], rel=1e-6)
    # The ten ops that matter most are the result's costliest, launch included.
    timed = [o for o in res.ops if o.fused_into is None]
    costliest = sorted(timed, key=lambda o: (-(o.launch_cycles + o.cycles), o.start))[:10]
    assert [r["op"] for r in s["top_ops"]] == [o.name for o in costliest]
    assert [r["mechanism"] for r in s["top_ops"]] == [op_mechanism(o) for o in costliest]
    assert [row[0] for row in _cells(page, "top-ops")] == [o.name for o in costliest]
    # By op type: each type's µs is its ops' launch + span.
    by_type = {r["type"]: r["us"] for r in s["by_type"]}
    for t in {o.op_type for o in timed}:
        cyc = sum(o.launch_cycles + o.cycles for o in timed if o.op_type == t)
        assert by_type[t] == pytest.approx(cyc * us, abs=1e-5)
    # One stream: the critical path is every op, and its idle time is nil.
    path = s["critical_path"]
    assert path["ops"] == [o.name for o in sorted(timed, key=lambda o: o.start)]
    assert path["busy_us"] == pytest.approx(s["total_us"], rel=1e-9)
    assert path["idle_us"] == pytest.approx(0, abs=1e-5)
    # Timeline bars are grouped (named, coloured) by op type.
    figs = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    names = {t["name"] for t in figs["timeline"]["data"] if t.get("meta") == "op"}
    assert names == {o.op_type for o in timed}


def test_report_of_a_real_profile_renders(tmp_path, chromium) -> None:
    from tests.traces._profiles import KERNEL_DETAILS_910B

    out = tmp_path / "real.html"
    assert main(["report", str(KERNEL_DETAILS_910B), "-o", str(out)]) == 0
    page = out.read_text()
    s = _summary(page)
    assert s["by_mechanism_us"]["cube"] == pytest.approx(45.5 + 46 + 496.7)
    body = body_attrs(dump_dom(chromium, out, tmp_path / "p"))
    assert body.get("data-ready") == "1"
    assert json.loads(body["data-js-errors"] or "null") == []
    assert body["data-op-bars"] == "13"
