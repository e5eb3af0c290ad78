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
