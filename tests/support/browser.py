"""Headless Chromium for checking HTML reports: the page's DOM after its scripts ran, its body
attributes (where the report records what it drew), and screenshots.

The report page sets ``data-ready``, ``data-js-errors``, ``data-op-bars``, ``data-ops`` and
``data-render-ms`` on ``<body>`` once it has drawn, so a test or benchmark can read what the
browser did without a driver protocol.
"""

from __future__ import annotations

import html.parser
import subprocess
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "body_attrs", "dump_dom", "screenshot"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Offline, sandbox-free (containers run as root) and quiet: no updates, sync or telemetry."""


def _run(browser: str, profile: Path, args: list[str], budget_ms: int, timeout: float) -> str:
    cmd = [browser, *CHROMIUM_FLAGS, f"--virtual-time-budget={budget_ms}"]
    cmd += [f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout


def dump_dom(
    browser: str, page: Path, profile: Path, *, budget_ms: int = 30000, timeout: float = 120
) -> str:
    """The DOM of ``page`` once its scripts ran (within ``budget_ms`` of virtual time)."""
    return _run(browser, profile, ["--dump-dom", page.as_uri()], budget_ms, timeout)


def screenshot(
    browser: str,
    page: Path,
    profile: Path,
    out: Path,
    *,
    size: tuple[int, int] = (1200, 1600),
    budget_ms: int = 30000,
    timeout: float = 120,
) -> None:
    """A PNG of ``page`` at ``size`` pixels, written to ``out``."""
    args = [f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.as_uri()]
    _run(browser, profile, args, budget_ms, timeout)


class _Body(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.attrs = dict(attrs)


def body_attrs(dom: str) -> dict[str, str | None]:
    """The attributes of the DOM's ``<body>``."""
    parser = _Body()
    parser.feed(dom)
    return parser.attrs
