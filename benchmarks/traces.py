"""Trace and report figures for ResNet-50 (batch 1) on ascend910.

Run: ``python benchmarks/traces.py``

Prints, at op and instr level: events, trace size and write time (streaming, atomic), the
validator's time; then the HTML report's size, build time, and its load time in headless
Chromium (wall time of ``--dump-dom`` and the page's own render time), when chromium exists.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hetnpu import chips, models
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.traces.chrome import write_chrome_trace
from hetnpu.traces.report import write_report
from hetnpu.traces.validate import validate_trace

# The test tooling lives with the tests, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.browser import body_attrs, dump_dom


def _browser_load(page: Path, profile: Path) -> tuple[float, str]:
    browser = shutil.which("chromium")
    if browser is None:
        return float("nan"), "chromium absent"
    t = time.perf_counter()
    dom = dump_dom(browser, page, profile, budget_ms=60000, timeout=300)
    wall = time.perf_counter() - t
    attrs = body_attrs(dom)
    return wall, (
        f"render {attrs.get('data-render-ms')} ms in page, bars {attrs.get('data-op-bars')}"
        f"/{attrs.get('data-ops')} ops, js errors {attrs.get('data-js-errors')}"
    )


def main() -> None:
    spec = chips.load("ascend910")
    graph = load(models.build("resnet50"))
    t = time.perf_counter()
    res = simulate(graph, spec, trace_level="instr")
    print(
        f"ResNet-50 b1 on ascend910: simulated in {time.perf_counter() - t:.2f} s, "
        f"{len(res.ops)} ops, {len(res.raw_events)} raw instruction events"
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for level in ("op", "instr"):
            path = d / f"{level}.json"
            t = time.perf_counter()
            write_chrome_trace(res, path, level, graph=graph, spec=spec)
            wall = time.perf_counter() - t
            n = len(json.loads(path.read_text())["traceEvents"])
            t = time.perf_counter()
            errors = validate_trace(path)
            check = time.perf_counter() - t
            print(
                f"trace {level:5s}: {n:7d} events, {path.stat().st_size / 1e6:6.2f} MB, "
                f"written in {wall:.3f} s ({n / wall:,.0f} events/s); validated in "
                f"{check:.3f} s, {len(errors)} problems"
            )
            page = d / f"{level}.html"
            t = time.perf_counter()
            size = write_report(path, page)
            build = time.perf_counter() - t
            load_s, note = _browser_load(page, d / f"profile-{level}")
            print(
                f"report {level:5s}: {size / 1e6:.2f} MB, built in {build:.2f} s, "
                f"loaded in headless Chromium in {load_s:.2f} s ({note})"
            )


if __name__ == "__main__":
    main()
