"""``InferenceSession``: partition a model, compile each stage on its device, run them in order.

The interface is onnxruntime's, so code written for it moves over unchanged::

    sess = hetnpu.InferenceSession("model.onnx", devices=["sim-npu", "cpu"])
    outputs = sess.run(None, {"x": x})          # same semantics as onnxruntime

``devices`` is ordered by preference, as onnxruntime's ``providers`` is; ``cpu`` is always
there as the fallback. A device whose backend cannot run here (no GPU, no CANN toolkit) is
dropped with a :class:`DeviceFallbackWarning`, or raises with ``fallback=False``: a fallback is
never silent, and it is recorded in ``sess.fallbacks`` and in the profile.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from hetnpu.backends import DEVICES, CompileOptions, Executable, get_backend
from hetnpu.errors import BackendUnavailableError, ConfigError, InputError
from hetnpu.graph import Graph, load
from hetnpu.graph.onnx_io import ShapeMap

__all__ = ["DeviceFallbackWarning", "InferenceSession", "NodeArg"]


class DeviceFallbackWarning(UserWarning):
    """A requested device cannot run here; its work goes to the next device in the list."""


@dataclass(frozen=True)
class NodeArg:
    """An input or output description, as onnxruntime's ``NodeArg``."""

    name: str
    shape: list[int | str | None]
    type: str
    """``"tensor(float)"`` etc., onnxruntime's spelling."""


_ORT_TYPE = {
    "float32": "float",
    "float16": "float16",
    "float64": "double",
    "bool": "bool",
    **{t: t for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
}


def _node_args(graph: Graph, names: Sequence[str]) -> list[NodeArg]:
    args = []
    for n in names:
        t = graph.tensors[n]
        shape = [
            d if d is not None else s
            for d, s in zip(t.shape or (), t.symbols or (None,) * len(t.shape or ()), strict=True)
        ]
        args.append(NodeArg(n, shape, f"tensor({_ORT_TYPE.get(t.dtype, t.dtype)})"))
    return args


class InferenceSession:
    """Run an ONNX model across devices with onnxruntime's ``InferenceSession`` interface.

    Parameters
    ----------
    model
        Path, serialized bytes or ``ModelProto``.
    devices
        Devices in order of preference: ``"npu"`` (Ascend through AscendCL), ``"sim-npu"``
        (the NPU's numerics in software), ``"gpu"`` (onnxruntime CUDA), ``"cpu"``.
    strategy
        Placement strategy: ``capability``, ``affinity``, ``heft`` or ``exact``.
    affinity
        ``{"op type | node name | glob": device}``, as OpenVINO HETERO's affinities.
    precision
        ``"fp16"`` (ATC's default) or ``"fp32"`` (ATC's force_fp32) for NPU stages.
    strict
        Raise :class:`~hetnpu.backends.sim.NumericOverflowError` instead of warning
            on fp16 overflow.
    fallback
        Drop unavailable devices with a warning (True) or raise BackendUnavailableError (False).
    profile
        Record the measured timeline of stages and transfers; see :meth:`end_profiling`.
    input_shapes
        Bind symbolic input dims up front. Otherwise a model with symbolic dims is planned at
        its first ``run`` for the shapes fed, and re-planned (cached) for new shapes.
    chip
        NPU chip preset or TOML path, for cost-based strategies.
    backend_options
        ``{device: {constructor kwargs}}`` for the backends.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        devices: Sequence[str] = ("cpu",),
        *,
        strategy: str = "capability",
        affinity: Mapping[str, str] | None = None,
        precision: str = "fp16",
        strict: bool = False,
        fallback: bool = True,
        profile: bool = False,
        input_shapes: ShapeMap | None = None,
        chip: Any = "ascend910",
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if isinstance(devices, str):
            devices = [d.strip() for d in devices.split(",") if d.strip()]
        unknown = [d for d in devices if d not in DEVICES]
        if unknown:
            raise ConfigError(f"unknown device(s) {unknown}; known devices: {', '.join(DEVICES)}")
        if precision not in ("fp16", "fp32", "int8"):
            raise ConfigError(f"precision {precision!r}: choose fp16, fp32 or int8")
        self._source = model
        self.precision = precision
        self.strategy = strategy
        self.affinity = dict(affinity or {})
        self.chip = chip
        self.profile = profile
        self.fallbacks: list[str] = []
        self._options = CompileOptions(precision=precision, profile=False)
        self._backend_options = {k: dict(v) for k, v in (backend_options or {}).items()}
        self._backends: dict[str, Any] = {}
        wanted = list(dict.fromkeys([*devices, "cpu"]))
        for dev in wanted:
            kwargs = dict(self._backend_options.get(dev, {}))
            if dev == "sim-npu":
                kwargs.setdefault("strict", strict)
            backend = get_backend(dev, **kwargs)
            status = backend.available()
            if not status:
                if not fallback:
                    raise BackendUnavailableError(f"device {dev!r} is unavailable: {status.reason}")
                note = (
                    f"device {dev!r} is unavailable ({status.reason}); "
                    "its work falls back to the next device"
                )
                warnings.warn(note, DeviceFallbackWarning, stacklevel=2)
                self.fallbacks.append(note)
                continue
            self._backends[dev] = backend
        self.devices = [d for d in wanted if d in self._backends]
        self._graph = load(model, input_shapes=input_shapes, require_static=False)
        self._plans: dict[tuple, _CompiledPlan] = {}
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        if input_shapes is not None or self._static_inputs():
            self._compiled({n: self._graph.tensors[n].shape for n in self._graph.inputs})

    # --- onnxruntime's interface ----------------------------------------------------------

    def get_inputs(self) -> list[NodeArg]:
        return _node_args(self._graph, self._graph.inputs)

    def get_outputs(self) -> list[NodeArg]:
        return _node_args(self._graph, self._graph.outputs)

    def get_providers(self) -> list[str]:
        """The devices in use, in order of preference (onnxruntime's providers)."""
        return list(self.devices)

    def get_device_assignment(self) -> dict[str, str]:
        """Which device runs each node (of the most recently used plan)."""
        plan = self._latest_plan()
        return dict(plan.plan.assignment)

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Run the model; ``output_names=None`` means every output, in the model's order."""
        feeds = self._check_inputs(input_feed)
        wanted = list(output_names) if output_names else list(self._graph.outputs)
        missing = [n for n in wanted if n not in self._graph.outputs]
        if missing:
            raise InputError(
                f"unknown output(s) {missing}; outputs are {list(self._graph.outputs)}"
            )
        compiled = self._compiled({n: tuple(a.shape) for n, a in feeds.items()})
        values = compiled.execute(feeds, self._record if self.profile else None)
        return [values[n] for n in wanted]

    def end_profiling(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the measured timeline as a Chrome trace (Perfetto) and return its path."""
        from hetnpu.traces.runtime import write_runtime_trace

        target = path or f"hetnpu_profile_{time.strftime('%Y%m%d_%H%M%S')}.json"
        with self._lock:
            events = list(self._events)
        write_runtime_trace(target, events, fallbacks=self.fallbacks)
        return os.fspath(target)

    # --- internals ------------------------------------------------------------------------

    def _static_inputs(self) -> bool:
        return all(self._graph.tensors[n].is_static for n in self._graph.inputs)

    def _latest_plan(self) -> _CompiledPlan:
        if not self._plans:
            raise InputError(
                "the model has symbolic input dims: run it once (or pass input_shapes) first"
            )
        return next(reversed(self._plans.values()))

    def _check_inputs(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        names = list(self._graph.inputs)
        unknown = [n for n in feed if n not in names]
        if unknown:
            raise InputError(f"unknown input(s) {unknown}; the model's inputs are {names}")
        missing = [n for n in names if n not in feed]
        if missing:
            raise InputError(f"missing input(s) {missing}; the model's inputs are {names}")
        out: dict[str, np.ndarray] = {}
        for n in names:
            t = self._graph.tensors[n]
            value = feed[n]
            if not isinstance(value, np.ndarray):
                raise InputError(f"input {n!r}: expected a numpy array, got {type(value).__name__}")
            if t.dtype != "undefined" and value.dtype != np.dtype(t.dtype):
                raise InputError(f"input {n!r}: expected dtype {t.dtype}, got {value.dtype}")
            if t.shape is not None and (
                value.ndim != len(t.shape)
                or any(d is not None and d != v for d, v in zip(t.shape, value.shape, strict=True))
            ):
                want = [
                    d if d is not None else (s or "?")
                    for d, s in zip(t.shape, t.symbols or (None,) * len(t.shape), strict=True)
                ]
                raise InputError(f"input {n!r}: expected shape {want}, got {list(value.shape)}")
            out[n] = value
        return out

    def _compiled(self, shapes: Mapping[str, Sequence[int | None]]) -> _CompiledPlan:
        key = tuple((n, tuple(shapes[n])) for n in self._graph.inputs)
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans[key] = self._plans.pop(key)  # most recently used last
                return found
        graph = (
            self._graph
            if self._static_inputs()
            else load(self._source, input_shapes={n: list(s) for n, s in key})
        )
        compiled = _CompiledPlan(self, graph)
        with self._lock:
            return self._plans.setdefault(key, compiled)

    def _record(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)

    def _now_us(self) -> float:
        return (time.perf_counter() - self._t0) * 1e6


class _CompiledPlan:
    """A plan for one set of input shapes, with every stage compiled on its backend."""

    def __init__(self, session: InferenceSession, graph: Graph) -> None:
        from hetnpu.scheduler import partition

        self.session = session
        self.graph = graph
        self.plan = partition(
            graph,
            devices=session.devices,
            strategy=session.strategy,
            chip=session.chip,
            affinity=session.affinity or None,
            precision=session.precision,
        )
        self.executables: list[Executable] = []
        for stage in self.plan.stages:
            backend = session._backends[stage.device]
            self.executables.append(
                backend.compile(self.plan.export_stage(stage.id), session._options)
            )
        self._deps: dict[int, set[int]] = {s.id: set() for s in self.plan.stages}
        producer = {t: s.id for s in self.plan.stages for t in s.outputs}
        for s in self.plan.stages:
            for t in s.inputs:
                if t in producer and producer[t] != s.id:
                    self._deps[s.id].add(producer[t])

    def execute(self, feeds: dict[str, np.ndarray], record: Any) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = dict(feeds)
        stages = {s.id: s for s in self.plan.stages}
        done: set[int] = set()
        running: dict[Future, int] = {}
        lock = threading.Lock()
        workers = max(1, min(4, len(stages)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hetnpu-stage") as pool:
            while len(done) < len(stages):
                ready = [
                    i
                    for i in stages
                    if i not in done and i not in running.values() and self._deps[i] <= done
                ]
                for i in ready:
                    with lock:
                        inputs = {t: values[t] for t in self.executables[i].input_names}
                    running[pool.submit(self._run_stage, i, inputs, record)] = i
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    outputs = fut.result()
                    with lock:
                        values.update(outputs)
                    done.add(i)
        return values

    def _run_stage(
        self, i: int, inputs: dict[str, np.ndarray], record: Any
    ) -> dict[str, np.ndarray]:
        stage = self.plan.stages[i]
        session = self.session
        if record is not None:
            t0 = session._now_us()
        # The tensors a stage reads cross from their producer's memory into its device's: a
        # real copy, as a host<->device memcpy is.
        moved = {t: np.array(v, copy=True) for t, v in inputs.items()}
        if record is not None:
            t1 = session._now_us()
            nbytes = sum(v.nbytes for v in moved.values())
            record(
                {
                    "kind": "transfer",
                    "stage": i,
                    "device": stage.device,
                    "start_us": t0,
                    "end_us": t1,
                    "bytes": nbytes,
                    "tensors": sorted(moved),
                }
            )
        outputs = self.executables[i].run(moved)
        if record is not None:
            record(
                {
                    "kind": "stage",
                    "stage": i,
                    "device": stage.device,
                    "start_us": t1,
                    "end_us": session._now_us(),
                    "nodes": list(stage.nodes),
                    "engine": getattr(self.executables[i], "engine", stage.device),
                }
            )
        return outputs
