"""Mistakes a user can make get one clear error naming the node, op, device or limit."""

from __future__ import annotations

import pytest

from hetnpu.errors import ConfigError, UnsupportedOpError
from hetnpu.scheduler import partition, place
from hetnpu.scheduler.placement import MAX_NODES
from tests.scheduler.helpers import TableCosts, tiny_model

COSTS = TableCosts({"npu": 0.25, "sim-npu": 0.25, "gpu": 0.5, "cpu": 1.0}, move=0.5)


def graph():
    return tiny_model(
        [
            ("/body/a", "Relu", ["x"]),
            ("/body/b", "CastLike", ["/body/a"]),
            ("/head/c", "Softmax", ["/body/b"]),
            ("/head/d", "CastLike", ["/head/c"]),
        ],
        ["/head/d"],
    )


def test_affinity_to_a_device_that_cannot_run_the_op():
    with pytest.raises(UnsupportedOpError) as err:
        place(graph(), ["npu", "cpu"], strategy="affinity", affinity={"CastLike": "npu"})
    text = str(err.value)
    assert "'/body/b' (CastLike)" in text and "'/head/d' (CastLike)" in text
    assert "npu" in text and "CANN" in text  # the capability table's reason


def test_affinity_pins_by_op_type_name_and_glob_later_entries_winning():
    p = place(
        graph(),
        ["npu", "cpu"],
        strategy="affinity",
        affinity=[("*", "npu"), ("CastLike", "cpu"), ("/head/*", "cpu"), ("/head/c", "npu")],
    )
    assert p.assignment == {"/body/a": "npu", "/body/b": "cpu", "/head/c": "npu", "/head/d": "cpu"}
    # Pins bind cost-based strategies too.
    h = place(
        graph(), ["npu", "cpu"], strategy="heft", cost_model=COSTS, affinity={"/body/a": "cpu"}
    )
    assert h.assignment["/body/a"] == "cpu"


@pytest.mark.parametrize(
    "affinity, match",
    [({"Conv": "cpu"}, "matches no node"), ({"Softmax": "gpu"}, "'gpu' is not among the devices")],
)
def test_affinity_config_mistakes(affinity, match):
    with pytest.raises(ConfigError, match=match):
        place(graph(), ["npu", "cpu"], strategy="affinity", affinity=affinity)


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(
        ConfigError, match=r"unknown device\(s\) 'tpu'; known devices: npu, sim-npu, gpu, cpu"
    ):
        place(graph(), ["tpu", "cpu"])


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known strategies: capability, affinity, heft, exact"):
        place(graph(), ["npu"], strategy="greedy")


def test_no_fallback_lists_every_node_no_accelerator_runs():
    with pytest.raises(UnsupportedOpError) as err:
        place(graph(), ["npu", "cpu"], fallback=False)
    text = str(err.value)
    assert "2 node(s)" in text
    assert "/body/b (CastLike)" in text and "/head/d (CastLike)" in text
    assert "/body/a" not in text


def test_fallback_is_recorded_with_the_reason():
    p = place(graph(), ["npu"])
    assert p.assignment == {"/body/a": "npu", "/body/b": "cpu", "/head/c": "npu", "/head/d": "cpu"}
    assert set(p.fallbacks) == {"/body/b", "/head/d"}
    assert "CastLike" in p.fallbacks["/body/b"] and "npu:" in p.fallbacks["/body/b"]


def test_exact_refuses_large_graphs_naming_the_limit():
    from hetnpu.graph import load
    from hetnpu.models.synthetic import random_dag

    g = load(random_dag(MAX_NODES + 1, seed=1))
    with pytest.raises(ConfigError, match=f"at most {MAX_NODES} non-constant nodes"):
        place(g, ["npu", "cpu"], strategy="exact", cost_model=COSTS)


def test_cost_based_strategies_need_a_cost_model():
    with pytest.raises(ConfigError, match="needs a cost model"):
        place(graph(), ["npu"], strategy="heft")


def test_partition_checks_devices_before_anything_else():
    with pytest.raises(ConfigError, match="unknown device"):
        partition(graph(), devices="npu,fpga", cost_model=COSTS)
