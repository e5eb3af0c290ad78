"""The residual model simulated once per session at instruction level."""

from __future__ import annotations

import pytest

from tests.traces._models import Run, run


@pytest.fixture(scope="session")
def sim() -> Run:
    return run()
