"""Run mutated models through every entry point of hetnpu and classify what happens.

A case (:class:`~tests.support.mutations.MutationSpec`) is mutated, then loaded, partitioned
with every strategy, simulated under an event budget, and run by an ``InferenceSession`` on
``["cpu"]`` and on ``["sim-npu", "cpu"]``. The allowed outcome of each stage is success or a
:class:`~hetnpu.errors.HetnpuError` whose message names something (a quoted token, or one of
the model's node and tensor names). Everything else is a bug, of one of these kinds:

``foreign``  an exception that is not a HetnpuError escaped;
``vague``    a HetnpuError whose message names nothing;
``memory``   MemoryError, i.e. an allocation beyond the worker's address-space limit;
``hang``     the case outlived its time bound (the worker is killed and replaced);
``crash``    the worker died (a segfault or abort in native code).

:class:`~tests.support.runner.FuzzRunner` runs cases in a separate process so that a hang in
native code, a crash or a huge allocation cannot take the caller down.
"""

from __future__ import annotations

import math
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tests.support.mutations import MutationSpec, mutate

__all__ = [
    "ALL_SOURCES",
    "CI_SOURCES",
    "SOURCES",
    "CaseResult",
    "FuzzConfig",
    "StageOutcome",
    "classify",
    "names_something",
    "run_case",
    "summarize",
]

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _light(name: str) -> Callable[[], onnx.ModelProto]:
    return lambda: onnx.load(str(LIGHT_DIR / f"{name}.onnx"))


def _builder(name: str, **kwargs: Any) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        from hetnpu import models

        return models.build(name, **kwargs)

    return build


SOURCES: dict[str, Callable[[], onnx.ModelProto]] = {
    "mlp": _builder("mlp", batch=2, in_features=32, hidden=(16, 8), num_classes=4),
    "mlp_dynamic": _builder("mlp", in_features=16, hidden=(8,), num_classes=4, dynamic_batch=True),
    "bert_base": _builder(
        "bert_base", seq_len=8, num_layers=1, hidden=32, heads=2, intermediate=64, vocab_size=64
    ),
    "mobilenetv2": _builder("mobilenetv2", image_size=32, num_classes=10),
    "resnet50": _builder("resnet50", image_size=32, num_classes=10),
    **{p.stem: _light(p.stem) for p in sorted(LIGHT_DIR.glob("light_*.onnx"))},
}
"""Source models by name: the project's builders at small sizes and onnx's light models."""

ALL_SOURCES: tuple[str, ...] = tuple(SOURCES)
CI_SOURCES: tuple[str, ...] = (
    "mlp",
    "mlp_dynamic",
    "bert_base",
    "mobilenetv2",
    "light_bvlc_alexnet",
    "light_squeezenet",
    "light_zfnet512",
)
"""Sources cheap enough (milliseconds to a few seconds per case) for the default test run."""

STAGES = (
    "load",
    "partition:capability",
    "partition:affinity",
    "partition:heft",
    "partition:exact",
    "simulate",
    "session:cpu",
    "session:sim-npu",
)

BUG_KINDS = ("foreign", "vague", "memory", "hang", "crash")

_NAMED = re.compile(r"'[^']*'|\"[^\"]*\"|<bytes>")


@dataclass(frozen=True)
class FuzzConfig:
    """Bounds of one campaign.

    Parameters
    ----------
    case_timeout_s
        A case running longer is a hang.
    memory_limit_bytes
        Address space the worker may add to what it has after start-up (RLIMIT_AS).
    max_events
        ``simulate``'s event budget.
    exact_max_nodes
        ``partition(strategy="exact")`` only on graphs this small.
    sim_npu_max_macs
        Run ``["sim-npu", "cpu"]`` sessions only on sources with at most this many MACs
        (its software numerics take tens of seconds on the 224x224 light models); the session
        is still built (partitioned and compiled) for bigger ones.
    feed_limit_bytes
        Inputs bigger than this are not allocated; the session gets a wrong-shaped feed
        instead, which it must refuse.
    """

    case_timeout_s: float = 60.0
    memory_limit_bytes: int = 3 << 30
    max_events: int = 500_000
    exact_max_nodes: int = 12
    sim_npu_max_macs: int = 60_000_000
    feed_limit_bytes: int = 64 << 20


@dataclass(frozen=True)
class StageOutcome:
    """What one stage did: ``status`` is ``ok``, ``skipped``, ``error`` or ``bug``."""

    stage: str
    status: str
    error: str = ""
    """Exception class name, or the bug kind for the parent-detected ones (hang, crash)."""
    message: str = ""
    frame: str = ""
    """The traceback's last frame (and the last frame inside hetnpu, if different)."""
    seconds: float = 0.0
    bug: str = ""
    """The bug kind (one of :data:`BUG_KINDS`) when ``status == "bug"``."""


@dataclass(frozen=True)
class CaseResult:
    """Every stage's outcome for one mutant."""

    spec: MutationSpec
    what: str
    stages: tuple[StageOutcome, ...] = field(default_factory=tuple)

    @property
    def bugs(self) -> list[StageOutcome]:
        return [s for s in self.stages if s.status == "bug"]

    @property
    def outcome(self) -> str:
        """``ok``, the first error's class name, or ``bug:<kind>``."""
        if self.bugs:
            return f"bug:{self.bugs[0].bug}"
        for s in self.stages:
            if s.status == "error":
                return s.error
        return "ok"

    def describe(self) -> str:
        lines = [f"{self.spec} ({self.what})"]
        for s in self.bugs:
            lines.append(f"  {s.stage}: {s.bug} {s.error}: {s.message[:300]}  [{s.frame}]")
        return "\n".join(lines)


# --- classification ---------------------------------------------------------------------------


def _frame(exc: BaseException) -> str:
    # SimPy re-raises a process's exception from its event loop, chained as the cause: the
    # innermost cause holds the frames where it really happened.
    while exc.__cause__ is not None and exc.__cause__.__traceback__ is not None:
        exc = exc.__cause__
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""

    def fmt(f: traceback.FrameSummary) -> str:
        path = f.filename
        marker = f"{os.sep}hetnpu{os.sep}"
        if marker in path:
            path = "hetnpu" + os.sep + path.rsplit(marker, 1)[1]
        else:
            path = os.path.basename(path)
        return f"{path}:{f.lineno} in {f.name}"

    last = fmt(frames[-1])
    ours = [
        f
        for f in frames
        if f"{os.sep}hetnpu{os.sep}" in f.filename and f"{os.sep}testing{os.sep}" not in f.filename
    ]
    if ours and ours[-1] is not frames[-1]:
        return f"{last} (from {fmt(ours[-1])})"
    return last


def names_something(message: str, names: Collection[str] = ()) -> bool:
    """Whether ``message`` names a node, tensor or key: a quoted token (the project's
    ``{name!r}`` convention) or, unquoted, one of ``names`` standing as a word of its own."""
    if _NAMED.search(message):
        return True
    for name in names:
        if len(name) >= 2 and name in message:
            at = message.index(name)
            before = message[at - 1] if at else " "
            after = message[at + len(name) : at + len(name) + 1] or " "
            if not (before.isalnum() or before in "_/.") and not (after.isalnum() or after == "_"):
                return True
    return False


def classify(
    stage: str, exc: BaseException, seconds: float, names: Collection[str] = ()
) -> StageOutcome:
    """The outcome of a stage that raised ``exc``; ``names`` are the model's node and tensor
    names, any of which a message may name unquoted."""
    from hetnpu.errors import HetnpuError

    message = " ".join(str(exc).split())[:2000]
    name = type(exc).__name__
    if isinstance(exc, HetnpuError):
        if names_something(message, names):
            return StageOutcome(stage, "error", name, message, _frame(exc), seconds)
        return StageOutcome(stage, "bug", name, message, _frame(exc), seconds, "vague")
    kind = "memory" if isinstance(exc, MemoryError) else "foreign"
    full = f"{type(exc).__module__}.{name}"
    return StageOutcome(stage, "bug", full, message, _frame(exc), seconds, kind)


# --- the stages -------------------------------------------------------------------------------

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _feeds(session: Any, rng: np.random.Generator, limit: int) -> dict[str, np.ndarray]:
    """Inputs matching the session's declared ones; wrong-shaped ones when those are too big."""
    feeds = {}
    for arg in session.get_inputs():
        dtype = np.dtype(_ORT_DTYPES.get(arg.type, np.float32))
        shape = [d if isinstance(d, int) else 1 for d in arg.shape]
        if any(d < 0 for d in shape) or math.prod(shape) * dtype.itemsize > limit:
            shape = [1] * len(shape)  # never allocate a huge input: the session must refuse
        if dtype.kind == "f":
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[arg.name] = np.zeros(shape, dtype)
    return feeds


def _proto_names(data: bytes) -> set[str]:
    """Node and tensor names of a serialized model, as a message may spell them unquoted
    (nodes without a name as ``load`` names them); empty if the bytes do not parse."""
    try:
        g = onnx.ModelProto.FromString(data).graph
    except Exception:
        return set()
    names = {vi.name for vi in [*g.input, *g.output, *g.value_info]}
    names.update(t.name for t in g.initializer)
    for i, n in enumerate(g.node):
        names.add(n.name or f"{n.op_type}_{i}")
        names.update(n.input)
        names.update(n.output)
    names.discard("")
    return names


def _stages(
    data: bytes, macs: int, config: FuzzConfig, report: Callable[[str], None]
) -> Iterator[StageOutcome]:
    import hetnpu
    from hetnpu.scheduler import STRATEGIES

    graph = None
    names = _proto_names(data)

    def timed(stage: str, fn: Callable[[], Any]) -> tuple[StageOutcome, Any]:
        report(stage)
        t0 = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:
            return classify(stage, exc, time.perf_counter() - t0, names), None
        return StageOutcome(stage, "ok", seconds=time.perf_counter() - t0), value

    outcome, graph = timed("load", lambda: hetnpu.load(data))
    yield outcome
    if graph is not None:
        names.update(graph.nodes, graph.tensors)
        for strategy in STRATEGIES:
            stage = f"partition:{strategy}"
            if strategy == "exact" and len(graph) > config.exact_max_nodes:
                yield StageOutcome(stage, "skipped")
                continue
            outcome, _ = timed(
                stage, lambda s=strategy: hetnpu.partition(graph, ["npu", "cpu"], strategy=s)
            )
            yield outcome
        outcome, _ = timed(
            "simulate",
            lambda: hetnpu.simulate(graph, "ascend910", max_events=config.max_events),
        )
        yield outcome
    rng = np.random.default_rng(0)
    for devices in (["cpu"], ["sim-npu", "cpu"]):
        stage = f"session:{devices[0]}"
        outcome, session = timed(stage, lambda d=devices: hetnpu.InferenceSession(data, d))
        if session is None:
            yield outcome
            continue
        if devices[0] == "sim-npu" and macs > config.sim_npu_max_macs:
            yield StageOutcome(stage, "skipped", seconds=outcome.seconds)
            continue
        build_s = outcome.seconds
        outcome, _ = timed(
            stage,
            lambda s=session: s.run(None, _feeds(s, rng, config.feed_limit_bytes)),
        )
        yield StageOutcome(
            outcome.stage,
            outcome.status,
            outcome.error,
            outcome.message,
            outcome.frame,
            outcome.seconds + build_s,
            outcome.bug,
        )


@dataclass
class _Source:
    model: onnx.ModelProto
    data: bytes
    macs: int


_CACHE: dict[str, _Source] = {}


def _source(name: str) -> _Source:
    hit = _CACHE.get(name)
    if hit is None:
        import hetnpu
        from hetnpu.graph.cost import node_cost

        model = SOURCES[name]()
        data = model.SerializeToString()
        try:
            g = hetnpu.load(data)
            macs = sum(node_cost(g, n).macs for n in g)
        except Exception:  # a source with symbolic dims: judge it by its nodes alone
            macs = 0
        hit = _CACHE[name] = _Source(model, data, macs)
    return hit


def run_case(
    spec: MutationSpec,
    config: FuzzConfig = FuzzConfig(),
    report: Callable[[str], None] = lambda stage: None,
) -> CaseResult:
    """Mutate and run one case in this process (no time or memory bound; see FuzzRunner)."""
    src = _source(spec.source)
    data, what = mutate(src.model, src.data, spec.kind, spec.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stages = tuple(_stages(data, src.macs, config, report))
    return CaseResult(spec, what, stages)


def summarize(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Counts per outcome, per (stage, error class), and the distinct bugs with an example."""
    outcomes: dict[str, int] = {}
    errors: dict[str, int] = {}
    bugs: dict[tuple[str, str, str], tuple[int, CaseResult]] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        for s in r.stages:
            if s.status == "error":
                errors[s.error] = errors.get(s.error, 0) + 1
            elif s.status == "bug":
                key = (s.stage.split(":")[0], f"{s.bug} {s.error}", s.frame.split(" (from ")[-1])
                count, first = bugs.get(key, (0, r))
                bugs[key] = (count + 1, first)
    return {"outcomes": outcomes, "errors": errors, "bugs": bugs}
