"""Host scheduling of a dynamic-shape graph: which ops of a decoder pass the host schedules one
by one, and how long the pass takes when the device has to wait for the host.

GE runs a graph in one of two ways (torchair user guide, "GE动/静态图概念"; CANN graph-mode
guide, "模型下沉调度"):

- **Sink scheduling.** The whole graph is loaded onto the device, and one task starts it.
- **Host scheduling.** The host CPU runs each op's InferShape and tiling, then launches it.

A graph whose input shapes are not fixed is a dynamic-shape graph. Its ops whose shapes vary
are host-scheduled, while its static parts still sink as subgraphs.

``torch.compile(dynamic=True)`` marks every dimension symbolic except those of size 0 or 1
(PyTorch's 0/1 specialization). So a decode step whose KV cache grows by concatenation, as
torchair's ChatGLM3 script compiles it, is a dynamic graph:

- at batch 1, only the ops that see the KV length vary;
- at any larger batch, every op sees the symbolic batch.

A prompt pass of more than one token varies with the prompt length at every batch.

**Timing.** The host runs ahead of the device, enqueuing ops. Op ``i`` can start on the
device once the host has scheduled it (``h_i = h_(i-1) + host_op_s``) and the device has
finished op ``i-1``. Each static subgraph costs the host one launch. When the ops are shorter
than the host's time per op, the device waits and the step is host-bound; that wait is the
``host`` class of the pass.

``host_op_s`` is the host's whole time per op; the device still pays each kernel's
``task_launch_s`` once the op reaches it (the calibration of the two takes the overlap). A
dynamic graph with no symbolic op at all waits one ``host_op_s`` for its one sunk subgraph,
which the default, sunk, timing leaves out.

Left out:

- host work besides scheduling ops (the framework's Python, sampling);
- synchronisations that stop the host from running ahead;
- the difference between scheduling a compute op and a view.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from hetnpu.graph.onnx_io import load
from hetnpu.models.decoder import DecoderConfig, build_decoder

__all__ = ["host_scheduled", "varying_ops"]


def varying_ops(
    config: DecoderConfig,
    layers: int,
    batch: int,
    shape: Mapping[str, Any],
    symbolic_batch: bool | None = None,
) -> frozenset[str]:
    """Names of the ops whose shapes are symbolic in the compiled graph.

    An op is symbolic when an input or output changes between the pass as built and the pass
    one token longer: the next KV length for decode, the next prompt length for a prompt. With
    ``symbolic_batch`` (default: ``batch > 1``), it is also symbolic when one changes at the
    next batch.
    """
    bumped = dict(shape)
    if shape["phase"] == "decode":
        bumped["kv_len"] = shape["kv_len"] + 1
    else:
        bumped["seq"] = shape["seq"] + 1
    if symbolic_batch is None:
        symbolic_batch = batch > 1
    here = _shapes(config, layers, batch, tuple(sorted(shape.items())))
    there = _shapes(config, layers, batch + 1 if symbolic_batch else batch,
                    tuple(sorted(bumped.items())))  # fmt: skip
    return frozenset(name for name, dims in here.items() if there.get(name) != dims)


@functools.lru_cache(maxsize=16)
def _shapes(
    config: DecoderConfig, layers: int, batch: int, shape: tuple[tuple[str, Any], ...]
) -> dict[str, tuple[Any, ...]]:
    """Each op's input and output shapes, by op name."""
    model = build_decoder(config, weights="absent", layers=layers, moe="even", batch=batch,
                          **dict(shape))  # fmt: skip
    graph = load(model)
    return {
        node.name: tuple(
            graph.tensors[t].shape if t in graph.tensors else None
            for t in (*node.inputs, *node.outputs)
        )
        for node in graph
    }


def host_scheduled(
    ops: Iterable[tuple[str, float, bool, str]], varying: frozenset[str], host_cycles: int
) -> tuple[float, dict[str, float]]:
    """The pass's cycles with the host scheduling ops, and its cycles by op class.

    ``ops`` are ``(name, device cycles, is a kernel, op class)`` in run order, each repeated
    as often as it runs. Host waits are counted as the ``host`` class.
    """
    device = host = 0.0
    by_class: dict[str, float] = {}
    static_run = False  # inside a static subgraph the host has already launched
    for name, cycles, kernel, cls in ops:
        if kernel:
            if name in varying:
                host += host_cycles
                static_run = False
            elif not static_run:
                host += host_cycles  # the static subgraph's one launch
                static_run = True
            if host > device:
                by_class["host"] = by_class.get("host", 0) + host - device
                device = host
        device += cycles
        by_class[cls] = by_class.get(cls, 0) + cycles
    return device, by_class
