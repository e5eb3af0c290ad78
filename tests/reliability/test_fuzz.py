"""Fuzzed ONNX models through load, partition, simulate and InferenceSession.

Every mutant (see :mod:`tests.support.mutations`) must either succeed or raise a HetnpuError
that names a node, tensor or key, at every stage; a foreign exception, a hang, a crash of the
worker process or an allocation past its memory cap fails the test with the case that
reproduces it (``python benchmarks/fuzz.py --replay SOURCE/KIND/SEED``).

The default run draws a fixed set of cases (hypothesis, derandomized) from the cheap sources;
the slow one covers every source, ResNet-50 and all the light models included.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.mutations import KINDS, MutationSpec, mutate, mutation_specs
from tests.support.pipeline import (
    ALL_SOURCES,
    CI_SOURCES,
    FuzzConfig,
    classify,
    names_something,
    run_case,
)
from tests.support.runner import FuzzRunner

# sim-npu's software numerics cost seconds on the conv nets: in the default run only the MLP and
# the BERT encoder run on it (the others are still partitioned and compiled for it).
CI_CONFIG = FuzzConfig(case_timeout_s=60.0, max_events=200_000, sim_npu_max_macs=2_000_000)

_SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    # Shrinking a seed gives another random mutant, not a smaller one: report the first.
    "phases": (Phase.explicit, Phase.generate),
    "suppress_health_check": [HealthCheck.too_slow],
}


@pytest.fixture(scope="module")
def runner() -> Iterator[FuzzRunner]:
    with FuzzRunner(CI_CONFIG) as r:
        yield r


@settings(max_examples=300, **_SETTINGS)
@given(spec=mutation_specs(CI_SOURCES))
def test_mutants_succeed_or_raise_a_named_hetnpu_error(runner: FuzzRunner, spec) -> None:
    result = runner.run(spec)
    assert not result.bugs, result.describe()
    # Every stage ran (or was skipped by design): nothing was silently cut short.
    stages = [s.stage for s in result.stages]
    assert stages[0] == "load" and stages[-2:] == ["session:cpu", "session:sim-npu"]


@pytest.mark.slow
@settings(max_examples=1500, **_SETTINGS)
@given(spec=mutation_specs(ALL_SOURCES))
def test_mutants_of_every_source(runner: FuzzRunner, spec) -> None:
    result = runner.run(spec)
    assert not result.bugs, result.describe()


@pytest.mark.parametrize("source", CI_SOURCES)
def test_unmutated_sources_run_everywhere(source: str) -> None:
    """The control: an unmutated source passes every stage (symbolic dims are refused by
    ``load`` alone, which insists on static shapes, while the session binds them at run)."""
    result = run_case(MutationSpec(source, "none", 0), CI_CONFIG)
    bad = [s for s in result.stages if s.status not in ("ok", "skipped")]
    if source.endswith("_dynamic"):
        assert [(s.stage, s.error) for s in bad] == [("load", "ModelError")]
        assert "input" in bad[0].message and "unbound" in bad[0].message
    else:
        assert bad == []
    status = {s.stage: s.status for s in result.stages}
    assert status["session:cpu"] == "ok"
    small = source in ("mlp", "mlp_dynamic", "bert_base")
    assert status["session:sim-npu"] == ("ok" if small else "skipped")


def test_mutations_are_reproducible_and_change_the_model() -> None:
    from tests.support.pipeline import _source

    src = _source("mlp")
    for kind in KINDS:
        for seed in range(3):
            a, what_a = mutate(src.model, src.data, kind, seed)
            b, what_b = mutate(src.model, src.data, kind, seed)
            assert (a, what_a) == (b, what_b)
            assert (a == src.data) == (kind == "none"), (kind, seed, what_a)


def test_the_runner_reports_hangs_crashes_and_foreign_exceptions() -> None:
    """The harness itself: a worker that dies is a crash, one that stops answering is a hang
    past the time bound, and either way the next case gets a fresh worker."""
    import os
    import signal

    from hetnpu.errors import ModelError

    with FuzzRunner(FuzzConfig(case_timeout_s=5.0)) as r:
        assert r.run(MutationSpec("mlp", "none", 0)).outcome == "ok"
        os.kill(r._proc.pid, signal.SIGKILL)
        r._proc.join(10)
        crashed = r.run(MutationSpec("mlp", "none", 0))
        assert [b.bug for b in crashed.bugs] == ["crash"]
        assert "exit code -9" in crashed.bugs[0].message
        assert r.run(MutationSpec("mlp", "none", 1)).outcome == "ok"
        os.kill(r._proc.pid, signal.SIGSTOP)
        hung = r.run(MutationSpec("mlp", "none", 1))
        assert [b.bug for b in hung.bugs] == ["hang"]
        assert "no result after 5 s" in hung.bugs[0].message
        assert r.run(MutationSpec("mlp", "none", 2)).outcome == "ok"
        assert r.restarts == 2

    assert classify("x", KeyError("k"), 0.0).bug == "foreign"
    assert classify("x", MemoryError(), 0.0).bug == "memory"
    assert classify("x", ModelError("node 'a' is bad"), 0.0).status == "error"
    assert classify("x", ModelError("something is bad"), 0.0).bug == "vague"
    assert names_something("1 node(s) run on no device: n30 (Relu)", {"n30"})
    assert not names_something("metadata is bad", {"data"})
