"""``hetnpu simulate --check`` holds Vector and movement ops to a floor the lowering cannot move.

The floor (hetnpu.simulator.bounds.roofline_bounds) comes from the op's bytes in
hetnpu.graph.cost and the chip's bus, MTE and Vector rates, not from the lowered program; so a
lowering that drops half its work runs faster than the floor and ``--check`` names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from hetnpu.cli import main
from hetnpu.graph import Graph, Node, load
from hetnpu.simulator import lowering, simulate
from hetnpu.simulator.lowering.common import LowerCtx, Lowered

SHAPE = [1024, 2048]  # 4 MiB of fp16: a few UB tiles per core on every preset


def _model(op_type: str) -> onnx.ModelProto:
    """Two Sigmoids, then ``op`` of their outputs. The Sigmoids leave both operands in L2, so
    ``op`` runs at the L2 and MTE rates its floor is made of (an op reading cold HBM would run
    far above it, and half its work could hide under the gap)."""
    # Concat on the inner axis: on the outer one GE would write both operands in place and
    # run no Concat at all (hetnpu.simulator.notask).
    out = [SHAPE[0], SHAPE[1] * 2] if op_type == "Concat" else SHAPE
    attrs = {"axis": 1} if op_type == "Concat" else {}
    nodes = [
        helper.make_node("Sigmoid", ["X1"], ["S1"], name="pre1"),
        helper.make_node("Sigmoid", ["X2"], ["S2"], name="pre2"),
        helper.make_node(op_type, ["S1", "S2"], ["Y"], name="op", **attrs),
    ]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "g",
        [vi("X1", TensorProto.FLOAT16, SHAPE), vi("X2", TensorProto.FLOAT16, SHAPE)],
        [vi("Y", TensorProto.FLOAT16, out)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _half(low: Lowered) -> Lowered:
    """``low`` with each core keeping only the first half of its UB tiles (each tile ends with
    its MTE3 store, so a prefix of whole tiles keeps every flag paired), and reporting half the
    Vector work: a lowering that under-counts."""
    programs = []
    for prog in low.programs:
        ends = [i for i, ins in enumerate(prog) if ins.unit == "MTE3"]
        assert len(ends) >= 2, "the test needs at least two tiles per core to drop half"
        programs.append(prog[: ends[len(ends) // 2 - 1] + 1])
    return dataclasses.replace(low, programs=tuple(programs), vector_bytes=low.vector_bytes // 2)


def _double(low: Lowered) -> Lowered:
    """``low`` with every core running its program twice (flags end as they start, so the
    second pass runs like the first) and reporting twice the Vector work: an over-count."""
    return dataclasses.replace(
        low,
        programs=tuple(prog + prog for prog in low.programs),
        vector_bytes=low.vector_bytes * 2,
    )


@pytest.fixture
def patch_lowering(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``patch_lowering(op_type, change)``: lower ``op_type`` as usual, then apply ``change``.

    Each patch swaps the lowering cache for an empty one, so no program lowered before it is
    reused and none lowered under it outlives the test."""

    originals = dict(lowering.LOWERINGS)

    def patch(op_type: str, change: Callable[[Lowered], Lowered]) -> None:
        monkeypatch.setattr(lowering, "_CACHE", {})
        real = originals[op_type]

        def altered(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
            low = real(node, graph, ctx)
            return change(low) if node.name == "op" else low

        monkeypatch.setitem(lowering.LOWERINGS, op_type, altered)

    yield patch


@pytest.mark.parametrize("op_type", ["Concat", "Add"])
def test_check_flags_a_lowering_that_drops_half_its_work(
    op_type: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    patch_lowering: Callable[..., None],
) -> None:
    # Concat is a movement op (its old floor was the bytes its own program moved), Add a
    # Vector op (its old compute floor was the Vector work its lowering reported).
    path = tmp_path / "m.onnx"
    onnx.save(_model(op_type), path)
    args = ["simulate", str(path), "--chip", "ascend910", "--check"]
    assert main(args) == 0  # the honest lowering is above its floor
    honest = capsys.readouterr().out
    assert "check:" in honest and "check FAILED" not in honest

    patch_lowering(op_type, _half)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"check FAILED: op ({op_type})" in out


@pytest.mark.parametrize("op_type", ["Concat", "Add"])
def test_the_floor_does_not_move_with_the_lowering(
    op_type: str, patch_lowering: Callable[..., None]
) -> None:
    graph = load(_model(op_type))

    def op(res: object) -> object:
        (rec,) = [o for o in res.ops if o.name == "op"]  # type: ignore[attr-defined]
        return rec

    honest = op(simulate(graph, "ascend910"))
    patch_lowering(op_type, _half)
    half = op(simulate(graph, "ascend910"))
    patch_lowering(op_type, _double)
    double = op(simulate(graph, "ascend910"))
    bounds = {(o.compute_bound_cycles, o.memory_bound_cycles) for o in (honest, half, double)}
    assert len(bounds) == 1 and honest.roofline_cycles > 0
    assert half.cycles < honest.roofline_cycles <= honest.cycles < double.cycles
    # --check is a floor: an over-counting lowering is slower, not faster, so it passes the
    # check; what shows it is its ratio to the unmoved floor (sim/roofline in the summary),
    # nearly twice the honest one (the fixed latencies are not doubled).
    assert double.roofline_ratio > 1.5 * honest.roofline_ratio
