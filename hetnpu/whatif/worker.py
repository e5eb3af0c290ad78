"""One sweep point, simulated where an executor runs it (a local process or a Dask worker).

Everything here is picklable and imports lazily. A worker process keeps the models it has
loaded (by source and input shapes), so a sweep pays for loading a model once per process and
shape rather than once per point.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hetnpu.devices.names import DEFAULT_DEVICES
from hetnpu.errors import ConfigError, HetnpuError

__all__ = ["ModelRef", "Task", "load_graph", "run_task", "simulate_task"]

_BOUNDS = ("compute", "memory", "latency")


@dataclass(frozen=True)
class ModelRef:
    """Where a sweep's model comes from: an ``.onnx`` file or a :mod:`hetnpu.models` name."""

    source: str
    kind: str
    """``"file"``, ``"zoo"`` or ``"llm"`` (a decoder config, timed by :mod:`hetnpu.whatif.llm`)."""


@dataclass(frozen=True)
class Task:
    """Everything one point's simulation needs, resolved and validated by the caller."""

    model: ModelRef
    spec: Any
    """The point's ``NpuSpec``."""
    shapes: tuple[tuple[str, tuple[int, ...]], ...] | None
    precision: str = "fp16"
    double_buffer: bool = True
    strategy: str | None = None
    devices: tuple[str, ...] | None = None
    batch: int = 1
    llm: tuple[tuple[str, Any], ...] = ()
    """An LLM point's ``prompt``, ``generate`` and ``kv_cache``."""


def resolve_model(model: str) -> ModelRef:
    """A file if ``model`` is one, else a model-zoo name; ConfigError if it is neither. A
    decoder ``config.json`` or a shipped decoder config name is an LLM."""
    from hetnpu.models.decoder import KNOWN_CONFIGS

    if model in KNOWN_CONFIGS or (model.endswith(".json") and os.path.isfile(model)):
        return ModelRef(os.path.abspath(model) if os.path.isfile(model) else model, "llm")
    if os.path.isfile(model):
        return ModelRef(os.path.abspath(model), "file")
    from hetnpu import models

    if model in models.MODELS:
        return ModelRef(model, "zoo")
    raise ConfigError(
        f"model {model!r}: no such file, and not a model name ({', '.join(sorted(models.MODELS))})"
    )


@functools.lru_cache(maxsize=2)
def _zoo_proto(name: str) -> Any:
    from hetnpu import models

    return models.build(name)


def model_source(ref: ModelRef) -> Any:
    """What :func:`hetnpu.graph.load` reads: the path, or the built ``ModelProto``."""
    return ref.source if ref.kind == "file" else _zoo_proto(ref.source)


@functools.lru_cache(maxsize=4)
def load_graph(ref: ModelRef, shapes: tuple[tuple[str, tuple[int, ...]], ...] | None) -> Any:
    """The loaded graph for ``ref`` with ``shapes`` bound (cached per process)."""
    from hetnpu.graph import load

    bound = {name: list(dims) for name, dims in shapes} if shapes else None
    return load(model_source(ref), input_shapes=bound)


def _bound(ops: Any) -> str:
    # The model's bound is the one its ops spend the most cycles under.
    cycles = dict.fromkeys(_BOUNDS, 0)
    for op in ops:
        if op.bound in cycles:
            cycles[op.bound] += op.cycles
    best = max(_BOUNDS, key=lambda b: cycles[b])
    return best if cycles[best] else "none"


def _busy(results: list[Any]) -> dict[str, float]:
    # Several NPU stages: each unit's busy fraction weighted by the stage's cycles.
    total = sum(r.cycles for r in results)
    units: dict[str, float] = {}
    for r in results:
        for unit, busy in r.unit_busy.items():
            units[unit] = units.get(unit, 0.0) + busy * r.cycles
    return {f"busy_{u.lower()}": (v / total if total else 0.0) for u, v in units.items()}


def simulate_task(task: Task) -> dict[str, Any]:
    """Simulate one point and return its metrics (raises what the simulator raises)."""
    from hetnpu import api, simulator

    if task.model.kind == "llm":
        from hetnpu.whatif.llm_sweep import sweep_metrics

        return sweep_metrics(task.model.source, task.spec, task.batch, task.precision, task.llm)

    graph = load_graph(task.model, task.shapes)
    t0, c0 = time.perf_counter(), time.process_time()
    if task.strategy is None and task.devices is None:
        res = simulator.simulate(
            graph, task.spec, precision=task.precision, double_buffer=task.double_buffer
        )
        npu = [res]
        latency, cycles = res.latency_s, res.cycles
        extra: dict[str, Any] = {"stages": 1}
        unsupported = len(res.unsupported)
    else:
        sys_res = api.simulate_system(
            graph,
            task.spec,
            devices=task.devices or DEFAULT_DEVICES,
            strategy=task.strategy or "capability",
            precision=task.precision,
        )
        npu = list(sys_res.npu_results.values())
        latency, cycles = sys_res.makespan_s, sys_res.npu_cycles
        extra = {"stages": len(sys_res.stages)}
        unsupported = sum(len(s.roofline_ops) for s in sys_res.stages)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    hbm = sum(r.hbm_bytes for r in npu)
    ops = [op for r in npu for op in r.ops]
    return {
        "cycles": cycles,
        "latency_s": latency,
        # As the host times one synchronous aclmdlExecute of it (the chip's model_execute_s).
        "execute_latency_s": latency + task.spec.model_execute_s,
        "throughput_per_s": task.batch / latency if latency else 0.0,
        "bound": _bound(ops) if ops else "host",
        "hbm_traffic_bytes": hbm,
        "hbm_traffic_bytes_per_s": hbm / latency if latency else 0.0,
        **_busy(npu),
        **extra,
        "unsupported_ops": unsupported,
        "events": sum(r.events for r in npu),
        "sim_wall_s": wall,
        "sim_cpu_s": cpu,  # below sim_wall_s when other processes share the CPU
    }


def run_task(task: Task) -> dict[str, Any]:
    """:func:`simulate_task` with failures turned into results: one bad point must not stop
    the others. Returns ``{"status": "ok", ...metrics}`` or ``{"status": "error", "error": ...}``.
    """
    try:
        return {"status": "ok", **simulate_task(task)}
    except HetnpuError as exc:
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # a simulator bug: still one point's result, said to be internal
        return {"status": "error", "error": f"internal {type(exc).__name__}: {exc}"}


def shapes_key(shapes: Mapping[str, list[int]] | None) -> tuple | None:
    """``shapes`` as the hashable, ordered form :class:`Task` carries."""
    if not shapes:
        return None
    return tuple(sorted((name, tuple(dims)) for name, dims in shapes.items()))
