"""The edges of a plan: tensor transfers between stages and the host, and TransData
conversions where a tensor enters or leaves the NPU's private layouts."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from hetnpu.devices.names import NPU_DEVICES
from hetnpu.devices.rates import device_dtype
from hetnpu.devices.roofline import device_layouts
from hetnpu.graph.ir import Graph, Tensor
from hetnpu.scheduler.evaluate import HOST, CostModel

if TYPE_CHECKING:
    from hetnpu.scheduler.plan import Stage, TransData, Transfer

__all__ = ["layout_conversions", "link_name", "stage_transfers"]


def link_name(cost_model: CostModel | None, src: str, dst: str) -> str:
    """The link a tensor takes from ``src`` to ``dst``, named by the cost model if it can."""
    if src == dst:
        return "local"
    model = getattr(cost_model, "model", cost_model)  # see through a CachedCosts memo
    namer = getattr(model, "link_name", None)
    return namer(src, dst) if callable(namer) else f"{src}-{dst}"


def stage_transfers(
    graph: Graph, stages: Sequence[Stage], stage_of: Mapping[str, int], cost_model: CostModel | None
) -> list[Transfer]:
    """One transfer per (tensor, consuming stage), plus one per graph output to the host."""
    from hetnpu.scheduler.plan import Transfer

    out: list[Transfer] = []
    for s in stages:
        for t in s.inputs:
            prod = graph.producer(t)
            src = None if prod is None else stage_of[prod.name]
            src_dev = HOST if src is None else stages[src].device
            out.append(
                Transfer(
                    t,
                    src,
                    s.id,
                    src_dev,
                    s.device,
                    _nbytes(graph.tensors[t]),
                    link_name(cost_model, src_dev, s.device),
                )
            )
    for t in graph.outputs:
        prod = graph.producer(t)
        if prod is None or prod.is_constant:
            continue
        src = stage_of[prod.name]
        dev = stages[src].device
        out.append(
            Transfer(
                t, src, None, dev, HOST, _nbytes(graph.tensors[t]), link_name(cost_model, dev, HOST)
            )
        )
    return out


def layout_conversions(
    graph: Graph, stages: Sequence[Stage], transfers: Sequence[Transfer], precision: str
) -> list[TransData]:
    """TransData at every NPU boundary crossing; NPU-to-NPU crossings cancel out.

    A tensor converted out of an NPU stage is converted once, however many non-NPU consumers
    it has; one converted into an NPU stage once per stage.
    """
    from hetnpu.scheduler.plan import TransData

    out: list[TransData] = []
    leaving: set[tuple[str, int]] = set()
    for tr in transfers:
        src_npu = tr.src_device in NPU_DEVICES and tr.src_stage is not None
        dst_npu = tr.dst_device in NPU_DEVICES and tr.dst_stage is not None
        if src_npu == dst_npu:  # neither end on the NPU, or both: an inverse pair cancels
            continue
        tensor = graph.tensors[tr.tensor]
        layouts = device_layouts(tensor)
        if layouts is None:
            continue
        outside, inside = layouts
        if dst_npu:
            out.append(
                TransData(
                    tr.tensor,
                    tr.dst_stage,
                    outside,
                    inside,  # type: ignore[arg-type]
                    _converted_bytes(tensor, outside, inside, precision),
                )
            )
        elif (tr.tensor, tr.src_stage) not in leaving:
            leaving.add((tr.tensor, tr.src_stage))  # type: ignore[arg-type]
            out.append(
                TransData(
                    tr.tensor,
                    tr.src_stage,
                    inside,
                    outside,  # type: ignore[arg-type]
                    _converted_bytes(tensor, inside, outside, precision),
                )
            )
    return out


def _nbytes(tensor: Tensor) -> int:
    return tensor.nbytes or 0


def _converted_bytes(tensor: Tensor, src: str, dst: str, precision: str) -> int:
    if not tensor.is_static:
        return 0
    dtype = device_dtype(tensor.dtype, precision)
    return _transdata_bytes(tuple(tensor.shape), src, dst, dtype)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _transdata_bytes(shape: tuple[int, ...], src: str, dst: str, dtype: str) -> int:
    from hetnpu.devices.layouts import transdata_bytes

    return int(transdata_bytes(shape, src, dst, dtype))
