"""Fixtures of the scheduler tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cost_model():
    """The default analytical cost model: an Ascend 910 with the generic CPU and GPU."""
    from hetnpu.scheduler import default_cost_model

    return default_cost_model("ascend910")
