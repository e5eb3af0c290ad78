"""The residual model simulated once per session at instruction level."""

from __future__ import annotations

import pytest

from tests.traces._models import Run, run


@pytest.fixture(scope="session")
def sim() -> Run:
    return run()


@pytest.fixture(scope="session")
def sim_launch() -> Run:
    """The same model with a 2 µs kernel launch, so dispatch time shows."""
    return run(task_launch_s=2e-6)


@pytest.fixture(scope="session")
def attention(tmp_path_factory):
    """The attention block of the real 910B profile simulated on the 910B (separate AIC and
    AIV cores), and its op-level trace."""
    from hetnpu.graph import load
    from hetnpu.simulator import simulate
    from hetnpu.traces.chrome import write_chrome_trace
    from tests.traces._profiles import attention_block

    graph = load(attention_block())
    res = simulate(graph, "ascend910b", trace_level="op")
    path = tmp_path_factory.mktemp("attention") / "sim.json"
    write_chrome_trace(res, path, "op", graph=graph)
    return res, path
