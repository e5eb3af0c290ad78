"""A plan compiled for one set of input shapes: stages compiled on their backends, run in
dependency order, with the tensors between them moved and converted for real.

What crosses a stage boundary between two devices is copied (the memcpy a host<->device
transfer is), and a tensor entering or leaving an NPU stage goes through the TransData the plan
lists: it is converted into the NPU's layout (NC1HWC0 or FRACTAL_NZ, in fp16 unless the session
is fp32) by :mod:`hetnpu.devices.layouts` and read back from it. The sim-npu executables take
and return ND arrays, so both halves of each conversion run at the boundary, on the real data.
Tensors staying on one device (host inputs read by a CPU stage, NPU stage to NPU stage) are
passed by reference: no copy, as on the hardware.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TYPE_CHECKING, Any

import numpy as np

from hetnpu.errors import (
    BackendFault,
    HetnpuError,
    ModelError,
    NumericOverflowError,
    NumericOverflowWarning,
    first_line,
)
from hetnpu.scheduler.evaluate import HOST

if TYPE_CHECKING:
    from hetnpu.backends.base import Backend, CompileOptions
    from hetnpu.graph import Graph
    from hetnpu.scheduler.plan import ExecutionPlan

__all__ = ["PlanExecutor", "from_device", "to_device"]

Record = Callable[[dict[str, Any]], None] | None
_BLOCKED = ("NC1HWC0", "FRACTAL_NZ")
_PLAN_IDS = itertools.count(1)


def _process_clock_us() -> float:
    return time.perf_counter() * 1e6


def to_device(x: np.ndarray, layout: str, precision: str) -> np.ndarray:
    """``x`` as the NPU holds it: in ``layout``, and in fp16 unless ``precision`` is fp32."""
    from hetnpu.devices import layouts

    if precision == "fp16" and x.dtype.kind == "f":
        with np.errstate(over="ignore"):
            x = x.astype(np.float16)
    if layout == "NC1HWC0":
        return layouts.nchw_to_nc1hwc0(x)
    return layouts.nd_to_fractal_nz(x)


def from_device(
    blocked: np.ndarray, layout: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """The ND/NCHW array of ``shape`` and ``dtype`` that ``blocked`` (from :func:`to_device`)
    holds."""
    from hetnpu.devices import layouts

    if layout == "NC1HWC0":
        nd = layouts.nc1hwc0_to_nchw(blocked, shape[1])
    else:
        nd = layouts.fractal_nz_to_nd(blocked, shape)
    return nd.astype(dtype, copy=False)


class PlanExecutor:
    """An execution plan's stages compiled on their backends, ready to run.

    Parameters
    ----------
    plan : ExecutionPlan
        The validated plan (the caller partitions; the executor only runs).
    graph : Graph
        The graph ``plan`` was built from.
    backends : mapping of str to Backend
        The backend of every device the plan's stages use.
    options : CompileOptions
        What each stage is compiled with (its ``precision`` also sets the layout conversions).
    strict : bool
        A finite value beyond fp16 entering an NPU stage raises
        :class:`~hetnpu.errors.NumericOverflowError` instead of warning.
    clock : callable, optional
        Microseconds on the caller's timeline, for recorded events.
    pool : callable, optional
        Returns the thread pool that runs independent stages concurrently (created lazily by
        the caller, shared by its plans); without one, stages run one after another.

    ``execute`` may be called from several threads at once: each call keeps its tensors in
    its own dict, and executables are shared read-only.
    """

    def __init__(
        self,
        plan: ExecutionPlan,
        graph: Graph,
        backends: Mapping[str, Backend],
        options: CompileOptions,
        *,
        strict: bool = False,
        clock: Callable[[], float] | None = None,
        pool: Callable[[], Executor] | None = None,
    ) -> None:
        self.uid = next(_PLAN_IDS)
        self.graph = graph
        self.plan = plan
        self.precision = options.precision
        self.strict = strict
        self._now_us = clock or _process_clock_us
        self._pool = pool
        stages = self.plan.stages
        if len(stages) > 1:
            options = dataclasses.replace(options, extra={**options.extra, "ort_spinning": False})
        self.executables = [
            backends[s.device].compile(self.plan.export_stage(s.id), options) for s in stages
        ]
        producer = {t: s.id for s in stages for t in s.outputs}
        self.deps: list[frozenset[int]] = [
            frozenset(producer[t] for t in s.inputs if t in producer and producer[t] != s.id)
            for s in stages
        ]
        # Stage ids are a topological order; when each stage reads its predecessor that order
        # is the only one, and a pool would only add hand-offs.
        self.parallel = any(k - 1 not in self.deps[k] for k in range(1, len(stages)))
        entering = {(td.tensor, td.stage): td for td in self.plan.transdata}
        # Per stage: (tensor, producer stage or None for the host, source device, copy?, NPU
        # layout to enter through or None).
        self.moves: list[list[tuple[str, int | None, str, bool, str | None]]] = []
        for s in stages:
            moves = []
            for t in self.executables[s.id].input_names:
                src = stages[producer[t]].device if t in producer else HOST
                td = entering.get((t, s.id))
                layout = td.dst_layout if td is not None and td.dst_layout in _BLOCKED else None
                moves.append((t, producer.get(t), src, src != s.device, layout))
            self.moves.append(moves)
        # Per stage: (tensor, NPU layout it leaves through or None, copy to the host?).
        outputs = set(graph.outputs)
        self.leaving: list[list[tuple[str, str | None, bool]]] = []
        for s in stages:
            leave = []
            for t in s.outputs:
                td = entering.get((t, s.id))
                layout = td.src_layout if td is not None and td.src_layout in _BLOCKED else None
                to_host = t in outputs and s.device != HOST
                if layout is not None or to_host:
                    leave.append((t, layout, to_host))
            self.leaving.append(leave)
        made = set(producer) | set(graph.inputs)
        self.constants = self._constant_outputs([t for t in graph.outputs if t not in made])

    def _constant_outputs(self, names: list[str]) -> dict[str, np.ndarray]:
        """Graph outputs known before run time (folded constants, initializers)."""
        if not names:
            return {}
        from onnx import numpy_helper

        from hetnpu.backends.cpu import ReferenceExecutable
        from hetnpu.graph.onnx_io import extract
        from hetnpu.scheduler.plan import _constant_closure

        inits = {i.name: i for i in self.graph.model.graph.initializer}
        out = {n: numpy_helper.to_array(inits[n]) for n in names if n in inits}
        rest = [n for n in names if n not in out]
        if rest:
            nodes = {p.name for n in rest if (p := self.graph.producer(n)) is not None}
            nodes |= _constant_closure(self.graph, tuple(nodes))
            model = extract(self.graph, nodes)
            try:
                values = ReferenceExecutable(model).run({})
            except Exception as exc:  # the evaluator raises plain exceptions of many kinds
                shown = sorted(nodes)
                more = f" and {len(shown) - 4} more" if len(shown) > 4 else ""
                raise ModelError(
                    f"constant outputs {', '.join(map(repr, rest))} cannot be folded "
                    f"(nodes {', '.join(map(repr, shown[:4]))}{more}): "
                    f"{type(exc).__name__}: {first_line(exc, '')}"
                ) from None
            out.update({n: values[n] for n in rest if n in values})
        return out

    def execute(self, feeds: dict[str, np.ndarray], record: Record, run: int) -> dict[str, Any]:
        """Run every stage on ``feeds``; return every tensor by name (outputs included)."""
        values: dict[str, Any] = dict(feeds)
        n = len(self.plan.stages)
        if not self.parallel or self._pool is None:
            for i in range(n):
                values.update(self._run_stage(i, self._gather(i, values), record, run))
        else:
            pool = self._pool()
            done: set[int] = set()
            running: dict[Future, int] = {}
            submitted: set[int] = set()
            while len(done) < n:
                for i in range(n):
                    if i not in submitted and self.deps[i] <= done:
                        submitted.add(i)
                        inputs = self._gather(i, values)
                        running[pool.submit(self._run_stage, i, inputs, record, run)] = i
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    values.update(fut.result())
                    done.add(i)
        values.update(self.constants)
        return values

    def _gather(self, i: int, values: dict[str, Any]) -> dict[str, Any]:
        return {t: values[t] for t, *_ in self.moves[i]}

    def _run_stage(
        self, i: int, inputs: dict[str, Any], record: Record, run: int
    ) -> dict[str, np.ndarray]:
        stage = self.plan.stages[i]
        now = self._now_us
        for t, src_stage, src, copy, layout in self.moves[i]:
            if not copy and layout is None:
                continue
            value = inputs[t]
            if copy:
                where = {"dst_stage": i, **({} if src_stage is None else {"src_stage": src_stage})}
                value = self._copy(value, t, src, stage.device, where, record, run)
            if layout is not None:
                value = self._transdata(value, layout, i, t, "in", record, run)
            inputs[t] = value
        t0 = now() if record else 0.0
        try:
            outputs = self.executables[i].run(inputs)
        except BackendFault as exc:  # the backend's own code failed at a node it names
            cause = exc.__cause__ or exc
            raise self._fault(i, cause, exc.node, own=True) from cause
        except HetnpuError:
            raise
        except Exception as exc:  # engines raise their own kinds; the user gets one of ours
            raise self._fault(i, exc) from exc
        if record:
            record(
                {
                    "kind": "stage",
                    "plan": self.uid,
                    "run": run,
                    "stage": i,
                    "device": stage.device,
                    "engine": getattr(self.executables[i], "engine", stage.device),
                    "nodes": len(stage.nodes),
                    "start_us": t0,
                    "end_us": now(),
                }
            )
        for t, layout, to_host in self.leaving[i]:
            value = outputs[t]
            if layout is not None:
                value = self._transdata(value, layout, i, t, "out", record, run)
            if to_host:
                value = self._copy(value, t, stage.device, "host", {"src_stage": i}, record, run)
            outputs[t] = value
        return outputs

    def _fault(
        self, i: int, exc: BaseException, node: str | None = None, *, own: bool = False
    ) -> BackendFault:
        """A backend failing on inputs the session accepted (their names, dtypes and shapes
        passed :meth:`InferenceSession.run`'s checks), so never an ``InputError``.

        ``own``: the backend's own code (sim-npu's numerics) failed, at ``node`` if it knows
        which: a hetnpu bug. A foreign engine (onnxruntime, AscendCL) may also be refusing a
        value, such as an index out of range, so its message says to check those first.
        """
        stage = self.plan.stages[i]
        engine = getattr(self.executables[i], "engine", stage.device)
        where = (
            f"node {node!r}"
            if node is not None
            else f"nodes {stage.nodes[0]!r}..{stage.nodes[-1]!r}"
        )
        if own:
            what = "this is a hetnpu bug; please report it with the model"
        else:
            what = (
                "the inputs passed hetnpu's checks: if their values are valid (indices in "
                "range...), this is a hetnpu bug; please report it with the model"
            )
        return BackendFault(
            f"stage {i} on {stage.device} ({engine}), {where}, failed: "
            f"{type(exc).__name__}: {first_line(exc)} — {what}",
            node=node,
        )

    def _copy(
        self,
        value: np.ndarray,
        tensor: str,
        src: str,
        dst: str,
        where: dict[str, int],
        record: Record,
        run: int,
    ) -> np.ndarray:
        """Copy ``value`` across devices (a real copy), recording the transfer if profiling."""
        t0 = self._now_us() if record else 0.0
        value = np.array(value, copy=True)
        if record:
            record(
                {
                    "kind": "transfer",
                    "run": run,
                    "tensor": tensor,
                    "plan": self.uid,
                    "src_device": src,
                    "dst_device": dst,
                    **where,
                    "bytes": int(value.nbytes),
                    "start_us": t0,
                    "end_us": self._now_us(),
                }
            )
        return value

    def _transdata(
        self,
        value: np.ndarray,
        layout: str,
        stage: int,
        tensor: str,
        direction: str,
        record: Record,
        run: int,
    ) -> np.ndarray:
        t0 = self._now_us() if record else 0.0
        if direction == "in":
            self._check_fp16_range(value, stage, tensor)
        blocked = to_device(value, layout, self.precision)
        back = from_device(blocked, layout, value.shape, value.dtype)
        if record:
            outside = "NCHW" if layout == "NC1HWC0" else "ND"
            src, dst = (outside, layout) if direction == "in" else (layout, outside)
            record(
                {
                    "kind": "transdata",
                    "run": run,
                    "stage": stage,
                    "device": self.plan.stages[stage].device,
                    "tensor": tensor,
                    "src_layout": src,
                    "dst_layout": dst,
                    "bytes": int(value.nbytes + blocked.nbytes),
                    "start_us": t0,
                    "end_us": self._now_us(),
                }
            )
        return back

    def _check_fp16_range(self, value: np.ndarray, stage: int, tensor: str) -> None:
        """A finite value that fp16 cannot hold becomes inf on entering the NPU: say so, as
        the NPU backend does for the values it computes (never a silent inf)."""
        if self.precision != "fp16" or value.dtype.kind != "f" or value.dtype.itemsize <= 2:
            return
        finite = np.abs(value[np.isfinite(value)])
        if finite.size == 0 or finite.max() <= np.finfo(np.float16).max:
            return
        device = self.plan.stages[stage].device
        msg = (
            f"tensor {tensor!r} entering stage {stage} ({device}) holds {finite.max():.4g}, "
            f"beyond fp16's {np.finfo(np.float16).max:.0f}: it becomes inf on the NPU "
            "(precision='fp32' keeps it)"
        )
        if self.strict:
            raise NumericOverflowError(msg)
        warnings.warn(msg, NumericOverflowWarning, stacklevel=2)

    def close(self) -> None:
        for exe in self.executables:
            exe.close()
