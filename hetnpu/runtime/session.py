"""``InferenceSession``: partition a model, compile each stage on its device, run them in order.

The interface is onnxruntime's, so code written for it moves over unchanged::

    sess = hetnpu.InferenceSession("model.onnx", devices=["sim-npu", "cpu"])
    outputs = sess.run(None, {"x": x})          # same semantics as onnxruntime

``devices`` is ordered by preference, as onnxruntime's ``providers`` is; ``cpu`` is always
there as the fallback. A device whose backend cannot run here (no GPU, no CANN toolkit) is
dropped with a :class:`DeviceFallbackWarning` and its work goes to the next device, or, with
``fallback=False``, the session refuses with :class:`~hetnpu.errors.BackendUnavailableError`
giving the reason: a fallback is never silent, and it is recorded in ``sess.fallbacks`` and in
the profile.

Inputs and outputs may also be sequences of tensors (lists of arrays) and optionals (``None``
when empty), as onnxruntime takes and gives them; the ops on them run on the CPU.

A plan is compiled once per set of input shapes and then serves any number of ``run`` calls,
from any number of threads at once: each call keeps its tensors to itself, and the backends'
executables are safe to share (onnxruntime's sessions are; the evaluator-based ones serialise).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from hetnpu.backends import CompileOptions, get_backend
from hetnpu.devices.names import base_device, device_index, is_npu, parse_devices
from hetnpu.errors import BackendUnavailableError, ConfigError, InputError
from hetnpu.graph import Graph, load
from hetnpu.graph.onnx_io import ShapeMap
from hetnpu.runtime.executor import PlanExecutor
from hetnpu.scheduler import partition

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
    "bfloat16": "bfloat16",
    **{t: t for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
}


def _dims(graph: Graph, name: str) -> list[int | str | None] | None:
    t = graph.tensors[name]
    if t.shape is None:
        return None
    symbols = t.symbols or (None,) * len(t.shape)
    return [d if d is not None else s for d, s in zip(t.shape, symbols, strict=True)]


def _type_str(graph: Graph, name: str) -> str:
    t = graph.tensors[name]
    if not t.is_tensor:
        return t.type_str  # seq(tensor(float)), optional(...): ONNX's spelling is onnxruntime's
    return f"tensor({_ORT_TYPE.get(t.dtype, t.dtype)})"


def _node_args(graph: Graph, names: Sequence[str]) -> list[NodeArg]:
    return [NodeArg(n, _dims(graph, n) or [], _type_str(graph, n)) for n in names]


class InferenceSession:
    """Run an ONNX model across devices with onnxruntime's ``InferenceSession`` interface.

    Parameters
    ----------
    model
        Path, serialized bytes or ``ModelProto``.
    devices
        Devices in order of preference: ``"npu"`` (Ascend through AscendCL), ``"sim-npu"``
        (the NPU's numerics in software), ``"gpu"`` (onnxruntime CUDA), ``"cpu"``; a list or
        ``"sim-npu,cpu"``. NPUs addressed one by one (``"sim-npu:0,sim-npu:1"``) share the
        model by ``parallel``.
    strategy
        Placement strategy: ``capability``, ``affinity``, ``heft`` or ``exact``.
    affinity
        ``{"op type | node name | glob": device}``, as OpenVINO HETERO's affinities.
    precision
        ``"fp16"`` (ATC's force_fp16) or ``"fp32"`` (ATC's must_keep_origin_dtype) for NPU
        stages.
    strict
        Raise :class:`~hetnpu.backends.sim.NumericOverflowError` instead of warning on fp16
        overflow.
    fallback
        Drop unavailable devices with a :class:`DeviceFallbackWarning` (True) or raise
        :class:`~hetnpu.errors.BackendUnavailableError` with the reason (False).
    profile
        Record the measured timeline of runs, stages, transfers, layout conversions and
        (from onnxruntime's own profiler) ops; see :meth:`end_profiling`.
    input_shapes
        Bind symbolic input dims up front. Otherwise a model with symbolic dims is planned at
        its first ``run`` for the shapes fed, and re-planned (cached) for new shapes.
    chip
        NPU chip preset or TOML path, for cost-based strategies.
    backend_options
        ``{device: {constructor kwargs}}`` for the backends.
    max_workers
        Threads that run independent stages of one ``run`` concurrently.
    parallel
        How a model is split over several addressed NPUs (``devices=["sim-npu:0",
        "sim-npu:1"]``): ``"tensor"`` (the default then: Megatron-style shards and
        collectives, :func:`~hetnpu.scheduler.parallel.tensor_parallel_plan`),
        ``"pipeline"`` (consecutive pieces, :func:`~hetnpu.scheduler.parallel.pipeline_plan`)
        or ``"expert"`` (an ``even`` MoE model's experts over the NPUs, all-to-all dispatch and
        combine, :func:`~hetnpu.scheduler.parallel.expert_parallel_plan`).

    Raises
    ------
    ConfigError
        Unknown device or precision.
    BackendUnavailableError
        A listed device cannot run here and ``fallback=False``.
    ModelError
        The model cannot be loaded.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        devices: Sequence[str] | str = ("cpu",),
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
        max_workers: int = 4,
        parallel: str | None = None,
    ) -> None:
        devices = parse_devices(devices)
        ranks = [d for d in devices if is_npu(d) and device_index(d) is not None]
        if parallel not in (None, "tensor", "pipeline", "expert"):
            raise ConfigError(f"parallel {parallel!r}: choose 'tensor', 'pipeline' or 'expert'")
        if parallel is not None and len(ranks) < 2:
            raise ConfigError(
                f"parallel={parallel!r} needs two or more addressed NPUs (sim-npu:0,sim-npu:1)"
            )
        self.parallel = parallel or ("tensor" if len(ranks) > 1 else None)
        if precision not in ("fp16", "fp32", "int8"):
            raise ConfigError(f"precision {precision!r}: choose fp16, fp32 or int8")
        if max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
        self._source = model
        self.precision = precision
        self.strategy = strategy
        self.affinity = dict(affinity or {})
        self.chip = chip
        self.profile = profile
        self.strict = strict
        self.fallbacks: list[str] = []
        self._options = CompileOptions(precision=precision, profile=profile)
        self._backend_options = {k: dict(v) for k, v in (backend_options or {}).items()}
        self._backends: dict[str, Any] = {}
        for dev in dict.fromkeys([*devices, "cpu"]):
            kind = base_device(dev)  # one backend object per addressed NPU
            kwargs = dict(self._backend_options.get(dev, self._backend_options.get(kind, {})))
            if kind == "sim-npu":
                kwargs.setdefault("strict", strict)
            backend = get_backend(kind, **kwargs)
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
        self.devices = list(self._backends)
        self._graph = load(model, input_shapes=input_shapes, require_static=False)
        self._plans: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._events: list[dict[str, Any]] = []
        self._runs = 0
        self._profiling = profile
        self._t0 = time.perf_counter()
        if input_shapes is not None or self._static_inputs():
            self._compiled({n: self._graph.tensors[n].shape for n in self._tensor_inputs()})

    # --- onnxruntime's interface ----------------------------------------------------------

    def get_inputs(self) -> list[NodeArg]:
        return _node_args(self._graph, self._graph.inputs)

    def get_outputs(self) -> list[NodeArg]:
        return _node_args(self._graph, self._graph.outputs)

    def get_providers(self) -> list[str]:
        """The devices in use, in order of preference (onnxruntime's providers)."""
        return list(self.devices)

    def get_device_assignment(self) -> dict[str, str]:
        """Which device runs each (non-constant) node, in the most recently used plan."""
        return dict(self._latest_plan().plan.assignment)

    def get_plan(self) -> Any:
        """The :class:`~hetnpu.scheduler.plan.ExecutionPlan` most recently used."""
        return self._latest_plan().plan

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Run the model and return the outputs asked for, in the order asked.

        ``output_names=None`` (or empty) means every output, in the model's order.
        ``run_options`` is accepted for onnxruntime compatibility and ignored.

        Raises
        ------
        InputError
            An unknown, missing or mistyped input (the message names it, with what was
            expected and what was given), or an unknown output name.
        """
        feeds = self._check_inputs(input_feed)
        wanted = list(output_names) if output_names else list(self._graph.outputs)
        missing = [n for n in wanted if n not in self._graph.outputs]
        if missing:
            raise InputError(
                f"unknown output(s) {missing}; the model's outputs are {list(self._graph.outputs)}"
            )
        compiled = self._compiled({n: feeds[n].shape for n in self._tensor_inputs()})
        record = self._record if self._profiling else None
        with self._lock:
            self._runs += 1
            run_id = self._runs
        t0 = self._now_us()
        values = compiled.execute(feeds, record, run_id)
        if record is not None:
            record({"kind": "run", "run": run_id, "start_us": t0, "end_us": self._now_us()})
        # An output that is also an input comes back as a new array, as onnxruntime's does.
        return [_copied(values[n]) if n in feeds else values[n] for n in wanted]

    def end_profiling(self, path: str | os.PathLike[str] | None = None) -> str:
        """Stop profiling and write the measured timeline as a Chrome trace; return its path.

        The file (written atomically) opens in Perfetto and reads in ``hetnpu summary``,
        ``hetnpu report`` and ``hetnpu trace-diff``. As with onnxruntime, profiling ends here.

        Raises
        ------
        ConfigError
            The session was not created with ``profile=True``.
        """
        from hetnpu.traces.runtime import write_runtime_trace

        if not self.profile:
            raise ConfigError("end_profiling: the session was created without profile=True")
        target = path or f"hetnpu_profile_{time.strftime('%Y%m%d_%H%M%S')}.json"
        with self._lock:
            self._profiling = False
            events = list(self._events)
            plans = list(self._plans.values())
        ort_events = [
            (plan.uid, i, exe.profile_events())
            for plan in plans
            for i, exe in enumerate(plan.executables)
            if hasattr(exe, "profile_events")
        ]
        write_runtime_trace(
            target,
            events,
            ort_events,
            meta={
                "model": self._graph.model.graph.name,
                "devices": self.devices,
                "strategy": self.strategy,
                "precision": self.precision,
                "fallbacks": self.fallbacks,
                "runs": self._runs,
            },
        )
        return os.fspath(target)

    # --- internals ------------------------------------------------------------------------

    def _tensor_inputs(self) -> list[str]:
        """The inputs that are tensors: only their shapes select a plan (a sequence's elements
        or an optional's presence change no placement)."""
        return [n for n in self._graph.inputs if self._graph.tensors[n].is_tensor]

    def _static_inputs(self) -> bool:
        return all(self._graph.tensors[n].is_static for n in self._tensor_inputs())

    def _latest_plan(self) -> Any:
        with self._lock:
            if not self._plans:
                raise InputError(
                    "the model has symbolic input dims: run it once (or pass input_shapes) first"
                )
            return next(reversed(self._plans.values()))

    def _check_inputs(self, feed: Mapping[str, Any]) -> dict[str, Any]:
        names = list(self._graph.inputs)
        if not isinstance(feed, Mapping):
            raise InputError(f"input_feed must be a dict of name -> array, got {type(feed)}")
        unknown = [n for n in feed if n not in names]
        if unknown:
            raise InputError(f"unknown input(s) {unknown}; the model's inputs are {names}")
        missing = [n for n in names if n not in feed]
        if missing:
            raise InputError(f"missing input(s) {missing}; the model's inputs are {names}")
        out: dict[str, Any] = {}
        for n in names:
            t = self._graph.tensors[n]
            value = feed[n]
            if not t.is_tensor:
                out[n] = _check_value(n, value, t.type_proto)
                continue
            if not isinstance(value, np.ndarray):
                raise InputError(f"input {n!r}: expected a numpy array, got {type(value).__name__}")
            if t.dtype != "undefined" and value.dtype != np.dtype(t.dtype):
                raise InputError(
                    f"input {n!r}: expected dtype {t.dtype} "
                    f"({_ORT_TYPE.get(t.dtype, t.dtype)}), got {value.dtype}"
                )
            want = _dims(self._graph, n)
            if want is not None:
                if value.ndim != len(want):
                    raise InputError(
                        f"input {n!r}: expected rank {len(want)} (shape {want}), "
                        f"got rank {value.ndim} (shape {list(value.shape)})"
                    )
                bad = [
                    k
                    for k, (d, v) in enumerate(zip(want, value.shape, strict=True))
                    if isinstance(d, int) and d != v
                ]
                if bad:
                    raise InputError(
                        f"input {n!r}: expected shape {want}, got {list(value.shape)} "
                        f"(dim {bad[0]}: expected {want[bad[0]]}, got {value.shape[bad[0]]})"
                    )
            out[n] = value
        return out

    def _compiled(self, shapes: Mapping[str, Sequence[int | None]]) -> PlanExecutor:

        key = tuple((n, tuple(shapes[n])) for n in self._tensor_inputs())
        with self._lock:
            found = self._plans.get(key)
        if found is not None:
            return found
        # One compilation at a time: concurrent first runs wait for one plan, not build two.
        with self._compile_lock:
            with self._lock:
                found = self._plans.get(key)
            if found is not None:
                return found
            graph = (
                self._graph
                if self._static_inputs()
                else load(self._source, input_shapes={n: list(s) for n, s in key}, allow_empty=True)
            )
            plan = self._plan(graph)
            compiled = PlanExecutor(
                plan,
                plan.graph,
                self._backends,
                self._options,
                strict=self.strict,
                clock=self._now_us,
                pool=self._stage_pool,
            )
            with self._lock:
                self._plans[key] = compiled
            return compiled

    def _plan(self, graph: Graph) -> Any:
        """The placement, or the parallel plan over the addressed NPUs."""
        if self.parallel is None:
            return partition(
                graph,
                devices=self.devices,
                strategy=self.strategy,
                chip=self.chip,
                affinity=self.affinity or None,
                precision=self.precision,
            )
        from hetnpu.scheduler.parallel import (
            expert_parallel_plan,
            pipeline_plan,
            tensor_parallel_plan,
        )

        ranks = [d for d in self.devices if is_npu(d) and device_index(d) is not None]
        if self.parallel == "tensor":
            return tensor_parallel_plan(graph, ranks, precision=self.precision)
        if self.parallel == "expert":
            return expert_parallel_plan(graph, ranks, precision=self.precision)
        return pipeline_plan(graph, ranks, chip=self.chip, precision=self.precision)

    def _stage_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="hetnpu-stage"
                )
            return self._pool

    def _record(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._profiling:
                self._events.append(event)

    def _now_us(self) -> float:
        return (time.perf_counter() - self._t0) * 1e6

    def close(self) -> None:
        """Release every compiled stage and the stage threads; the session is unusable after."""
        with self._lock:
            plans, self._plans = list(self._plans.values()), {}
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        for plan in plans:
            plan.close()

    def __enter__(self) -> InferenceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copied(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def _check_value(name: str, value: Any, type_proto: onnx.TypeProto | None) -> Any:
    """A fed sequence (a list of arrays) or optional (``None`` when empty) checked against its
    ONNX type, down to the element dtypes the type gives."""
    from hetnpu.graph.ir import type_string

    which = type_proto.WhichOneof("value") if type_proto is not None else None
    if which == "optional_type":
        if value is None:
            return None
        return _check_value(name, value, type_proto.optional_type.elem_type)  # type: ignore[union-attr]
    expected = type_string(type_proto) if type_proto is not None else "a value"
    if which == "sequence_type":
        if not isinstance(value, list | tuple):
            raise InputError(
                f"input {name!r}: expected a list of arrays ({expected}), "
                f"got {type(value).__name__}"
            )
        elem = type_proto.sequence_type.elem_type  # type: ignore[union-attr]
        return [_check_value(f"{name}[{i}]", v, elem) for i, v in enumerate(value)]
    if which == "tensor_type":
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input {name!r}: expected a numpy array ({expected}), got {type(value).__name__}"
            )
        elem = type_proto.tensor_type.elem_type  # type: ignore[union-attr]
        if elem and value.dtype != onnx.helper.tensor_dtype_to_np_dtype(elem):
            raise InputError(
                f"input {name!r}: expected dtype {onnx.helper.tensor_dtype_to_np_dtype(elem)} "
                f"({expected}), got {value.dtype}"
            )
        return value
    if value is None:
        raise InputError(f"input {name!r}: expected {expected}, got None")
    return value
