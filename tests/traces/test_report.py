"""The HTML report: self-contained, and rendered in headless Chromium without JavaScript errors,
with one timeline bar per op."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hetnpu.cli import main
from hetnpu.testing.browser import body_attrs, dump_dom, screenshot
from hetnpu.traces.chrome import write_chrome_trace
from tests.traces._models import runtime_like_trace


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed here when absent and possible; else a stated skip."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        proc = subprocess.run(
            ["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900
        )
        found = shutil.which("chromium")
        if found:
            return found
        pytest.skip(f"chromium could not be installed: {proc.stderr.strip()[-300:]}")
    pytest.skip("chromium is absent and apt-get install needs root here")


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
    assert text.count("<tr><td") == n_ops  # the op table


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
    assert int(body["data-op-bars"] or -1) == n_ops == 4  # TransData:X, conv1, conv2, add


def test_report_of_a_measured_runtime_trace_renders(tmp_path, chromium) -> None:
    trace = tmp_path / "rt.json"
    trace.write_text(json.dumps(runtime_like_trace()))
    out = tmp_path / "rt.html"
    assert main(["report", str(trace), "-o", str(out)]) == 0
    body = body_attrs(dump_dom(chromium, out, tmp_path / "p"))
    assert body.get("data-ready") == "1"
    assert json.loads(body["data-js-errors"] or "null") == []
    assert body["data-op-bars"] == "4"  # two ops on each of two devices
