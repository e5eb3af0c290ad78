"""Fixtures for the what-if sweep tests: small studies on the MLP builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VOLATILE = ("sim_wall_s", "sim_cpu_s")
"""Row fields that measure this machine, not the simulated chip."""


@pytest.fixture
def stable() -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Rows without their wall-clock fields, for comparing runs."""

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]

    return strip


@pytest.fixture
def count_sims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of the chip and system simulators made in this process."""
    import hetnpu.simulator as simulator
    from hetnpu.simulator import system

    calls = [0]
    real_chip, real_system = simulator.simulate, system.simulate_system

    def chip(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real_chip(*args, **kwargs)

    def whole(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real_system(*args, **kwargs)

    monkeypatch.setattr(simulator, "simulate", chip)
    monkeypatch.setattr(system, "simulate_system", whole)
    return calls
