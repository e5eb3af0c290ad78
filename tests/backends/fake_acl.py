"""A recording stand-in of CANN's ``acl`` module (pyacl) and of the ``atc`` converter.

``FakeAcl`` has the ``rt``, ``mdl`` and ``util`` namespaces and the top-level calls of
ascend-facts §4.1, with the same return conventions: creators return ``(value, ret)``, actions
``ret``, getters and constructors the bare value (null on failure). It records every call,
refuses what the real runtime refuses or what §4.1's order forbids (returning the §4.2 code and
noting a *violation*): a call before ``init``, ``create_context`` before ``set_device``, device
work in a thread without a current context, use of a freed pointer or a destroyed handle (so a
double free is an error code), reading an output before ``synchronize_stream``, destroying a
context that still owns streams or models, ``finalize`` while anything is alive. Memory is real:
``memcpy`` moves bytes between fake device buffers and host buffers, and ``mdl.execute`` runs
the ONNX file the fake .om points to in onnxruntime. ``fail_on("rt.malloc", 207001, nth=1)``
makes a call fail once, without doing anything; ``leaks()`` lists what was not released.

Conventions of the real module that the stand-in enforces, each with its source beside the code:

* ``init`` after ``finalize`` fails as older runtimes fail (``init_after_finalize=True`` gives
  the newest runtime, which allows it); a repeated ``init`` answers REPEAT_INITIALIZE.
* ``get_soc_name`` reports the chip (``soc_name=``), and ``mdl.load_from_file`` refuses an .om
  built by ATC for another ``--soc_version``.
* ``util.bytes_to_ptr`` takes ``bytes`` only (ValueError otherwise) and points into that object,
  which must outlive the pointer; ``legacy_util=True`` gives older pyacl, which has only
  ``numpy_to_ptr``/``ptr_to_numpy``.
* The .om computes as ATC's ``--precision_mode`` says: float16 Cube inputs under
  ``force_fp32``, everything in float16 under ``force_fp16``, the model's dtypes under
  ``must_keep_origin_dtype``.

``FakeAtc`` checks the command line against §4.3, ATC's option pages and the model, then writes
a .om that is a small JSON file recording the source .onnx path, the SoC and the precision mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ACL_DEVICE, ACL_HOST = 0, 1
H2H, H2D, D2H, D2D = 0, 1, 2, 3
# aclError codes the stand-in returns (ascend-facts §4.2).
INVALID_PARAM, UNINITIALIZE, REPEAT_INITIALIZE, INVALID_FILE = 100000, 100001, 100002, 100003
INVALID_MODEL_ID, DESERIALIZE_MODEL, READ_MODEL_FAILURE = 100011, 100012, 100014
MODEL_INPUT_NOT_MATCH, MODEL_OUTPUT_NOT_MATCH, REPEAT_FINALIZE = 100017, 100018, 100037
INVALID_RESOURCE_HANDLE = 200005
RT_INVALID_DEVICEID, RT_CONTEXT_NULL, RT_STREAM_CONTEXT = 107001, 107002, 107003

ACL_DTYPE = {np.dtype(t): c for c, t in [(0, np.float32), (1, np.float16), (2, np.int8),
             (3, np.int32), (4, np.uint8), (6, np.int16), (7, np.uint16), (8, np.uint32),
             (9, np.int64), (10, np.uint64), (11, np.float64), (12, np.bool_)]}  # fmt: skip
"""numpy dtype -> aclDataType (ascend-facts §4.1)."""

RET, PAIR, VALUE = "ret", "(value, ret)", "value"
KINDS: dict[str, str] = {
    **dict.fromkeys(
        ["init", "finalize", "destroy_data_buffer", "rt.set_device", "rt.reset_device",
         "rt.set_context", "rt.destroy_context", "rt.destroy_stream", "rt.synchronize_stream",
         "rt.free", "rt.free_host", "rt.memcpy", "mdl.get_desc", "mdl.destroy_desc",
         "mdl.destroy_dataset", "mdl.execute", "mdl.execute_async", "mdl.unload"], RET),
    **dict.fromkeys(
        ["rt.create_context", "rt.create_stream", "rt.get_run_mode", "rt.malloc",
         "rt.malloc_host", "mdl.load_from_file", "mdl.add_dataset_buffer",
         "mdl.get_cur_output_dims"], PAIR),
    **dict.fromkeys(
        ["create_data_buffer", "get_data_buffer_addr", "get_data_buffer_size_v2",
         "mdl.create_desc", "mdl.create_dataset", "mdl.get_num_inputs", "mdl.get_num_outputs",
         "mdl.get_input_size_by_index", "mdl.get_output_size_by_index",
         "mdl.get_output_data_type", "mdl.get_dataset_num_buffers", "mdl.get_dataset_buffer",
         "get_soc_name", "util.bytes_to_ptr", "util.ptr_to_bytes", "util.numpy_to_ptr",
         "util.ptr_to_numpy"], VALUE),
}  # fmt: skip
"""Every call the stand-in offers -> its return convention (ascend-facts §4.1)."""

_SIDES = {H2H: ("host", "host"), H2D: ("device", "host"), D2H: ("host", "device"),
          D2D: ("device", "device")}  # fmt: skip
"""memcpy kind -> (destination, source) memory (ascend-facts §4.1)."""

_NULL = {"mdl.get_output_data_type": -1, "util.ptr_to_bytes": b"", "mdl.get_cur_output_dims": {},
         "get_soc_name": None, "util.ptr_to_numpy": None}  # fmt: skip

LEGACY_UTIL = frozenset({"util.bytes_to_ptr", "util.ptr_to_bytes"})
"""What older pyacl lacks: Huawei's samples test ``"bytes_to_ptr" in dir(acl.util)`` and fall
back to numpy_to_ptr / ptr_to_numpy (Ascend/samples resnet50_imagenet_classification and
resnet50_async_imagenet_classification ``src/acl_net.py``, ``python/common/acllite/*.py``)."""

NPY_TYPES = {np.dtype(t).num: np.dtype(t) for t in (np.bool_, np.int8, np.uint8, np.int16,
             np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float16, np.float32,
             np.float64)}  # fmt: skip
"""ptr_to_numpy's ``type``: numpy's type numbers (pyACL ptr_to_numpy page: 2 NPY_UINT8 ...)."""

CUBE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
"""ONNX ops that run on the Cube unit, the "matrix computation" ops of ATC's precision pages."""

FP16_COMPUTE: dict[str, tuple[frozenset[str] | None, bool]] = {
    # Source for each: ATC/AOE --precision_mode pages (hiascend.com CANN 6.0.1 .../601/devtools/
    # auxiliarydevtool/aoepar_16_044.html, CANN 8.0.0 .../en/canncommercial/800/devaids/aoe/
    # aoepar_16_042.html) and ATC's --precision_mode_v2 page (.../800/devaids/atc/
    # atlasatcparam_16_0069.html). None = every op.
    "force_fp16": (None, True),  # "forces float16 for operators supporting both"
    "allow_fp32_to_fp16": (CUBE_OPS, True),  # "for cube operators, float16"
    # force_fp32 == cube_fp16in_fp32out: Cube ops "preferred input float16, output float32".
    "force_fp32": (CUBE_OPS, False),
    "cube_fp16in_fp32out": (CUBE_OPS, False),
    "must_keep_origin_dtype": (frozenset(), False),  # "retain the original precision"
    # Approximations (hetnpu never passes these): the built-in mixed-precision lists are
    # modelled as "Cube ops in float16", and bfloat16 as float16.
    "allow_mix_precision": (CUBE_OPS, True),
    "allow_mix_precision_fp16": (CUBE_OPS, True),
    "allow_mix_precision_bf16": (CUBE_OPS, True),
    "allow_fp32_to_bf16": (CUBE_OPS, True),
}
"""--precision_mode -> (ops whose float32 inputs are rounded to float16, outputs too?)."""

ATC_DEFAULT_PRECISION = "force_fp16"
"""ATC's default --precision_mode for inference (the precision pages above: "force_fp16
(default)")."""


def _described(arg: Any) -> Any:
    """A buffer argument as a short description: the record must not keep it alive, since the
    stand-in checks whether the caller still holds what a pointer points into."""
    if isinstance(arg, np.ndarray):
        return f"<ndarray {arg.nbytes} B>"
    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{type(arg).__name__} {memoryview(arg).nbytes} B>"
    return arg


@dataclass(frozen=True)
class Call:
    """One recorded call: name as in ``KINDS``, arguments, what it returned, which thread."""

    name: str
    args: tuple[Any, ...]
    result: Any
    thread: int
    injected: bool = False


@dataclass
class _Model:
    context: int
    session: ort.InferenceSession
    inputs: list[tuple[str, tuple[int, ...], np.dtype]]
    outputs: list[tuple[str, tuple[int, ...], np.dtype]]
    cur_dims: list[tuple[int, ...]] = field(default_factory=list)


def _tensors(values: Sequence[onnx.ValueInfoProto], skip: set[str]) -> list[Any]:
    return [
        (v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim),
         np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)))
        for v in values if v.name not in skip
    ]  # fmt: skip


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX element type, intermediate tensors included (by shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def as_compiled(model: onnx.ModelProto, precision_mode: str) -> onnx.ModelProto:
    """``model`` as the .om ATC builds with ``precision_mode`` computes it (:data:`FP16_COMPUTE`):
    the chosen ops' float32 inputs, and outputs if so, pass through float16."""
    ops, outputs_too = FP16_COMPUTE[precision_mode]
    if ops is not None and not ops:
        return model
    types = _elem_types(model)
    nodes: list[onnx.NodeProto] = []

    def rounded(src: str, dst: str) -> list[onnx.NodeProto]:
        return [
            helper.make_node("Cast", [src], [dst + "_h"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", [dst + "_h"], [dst], to=TensorProto.FLOAT),
        ]

    for i, original in enumerate(model.graph.node):
        node = onnx.NodeProto()
        node.CopyFrom(original)
        if ops is None or node.op_type in ops:
            for k, name in enumerate(node.input):
                if name and types.get(name) == TensorProto.FLOAT:
                    nodes += rounded(name, f"{name}__fp16in_{i}_{k}")
                    node.input[k] = f"{name}__fp16in_{i}_{k}"
            post: list[onnx.NodeProto] = []
            for k, name in enumerate(node.output):
                if outputs_too and name and types.get(name) == TensorProto.FLOAT:
                    node.output[k] = f"{name}__fp16out"
                    post += rounded(f"{name}__fp16out", name)
            nodes += [node, *post]
        else:
            nodes.append(node)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


class FakeAcl:
    """The stand-in ``acl`` module. See the module docstring for what it enforces."""

    def __init__(
        self,
        *,
        device_count: int = 1,
        run_mode: int = ACL_HOST,
        call_delay_s: float = 0,
        soc_name: str = "Ascend310P3",
        legacy_util: bool = False,
        init_after_finalize: bool = False,
    ):
        self.device_count, self.run_mode, self.call_delay_s = device_count, run_mode, call_delay_s
        self.soc_name, self.init_after_finalize = soc_name, init_after_finalize
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self._faults: list[list[Any]] = []
        self._lock = threading.RLock()
        self._next = 0x1000
        self._inited = False
        self._finalized = False
        self._device_refs: dict[int, int] = {}
        self._contexts: dict[int, int] = {}  # context -> device
        self._current: dict[int, int] = {}  # thread -> context
        self._streams: dict[int, int] = {}  # stream -> context
        self._pending: dict[int, list[Callable[[], int]]] = {}
        self._models: dict[int, _Model] = {}
        self._descs: dict[int, _Model | None] = {}
        self._datasets: dict[int, list[int]] = {}
        self._buffers: dict[int, tuple[int, int]] = {}  # data buffer -> (ptr, size)
        self._device: dict[int, bytearray] = {}
        self._host: dict[int, bytearray] = {}
        self._util: dict[int, bytes | np.ndarray] = {}  # the object a util pointer points into
        self._dirty: dict[int, int] = {}  # device pointer -> stream of a task that will write it
        self.rt, self.mdl, self.util = SimpleNamespace(), SimpleNamespace(), SimpleNamespace()
        for name, kind in KINDS.items():
            if legacy_util and name in LEGACY_UTIL:
                continue
            space, _, attr = name.rpartition(".")
            impl = getattr(self, "_" + name.replace(".", "_"))
            setattr(getattr(self, space) if space else self, attr, self._wrap(name, kind, impl))

    # -- recording and fault injection --------------------------------------------------------
    def fail_on(self, call: str, code: int | None = None, nth: int = 1) -> None:
        """Make the ``nth`` next call to ``call`` fail (with ``code`` unless it has none)."""
        if call not in KINDS:
            raise ValueError(f"fake acl has no call {call!r}")
        if (KINDS[call] == VALUE) != (code is None):
            want = "code=None" if KINDS[call] == VALUE else "an aclError code"
            raise ValueError(f"{call} returns {KINDS[call]}: pass {want}")
        self._faults.append([call, code, nth])

    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [c.name for c in self.calls]

    def _wrap(self, name: str, kind: str, impl: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if self.call_delay_s:
                time.sleep(self.call_delay_s)  # outside the lock: lets other threads interleave
            with self._lock:
                fire = self._take_fault(name)
                if fire is None:
                    result = impl(*args)
                else:
                    null = _NULL.get(name, 0)
                    result = fire[0] if kind == RET else (null, fire[0]) if kind == PAIR else null
                recorded = tuple(_described(a) for a in args)
                self.calls.append(
                    Call(name, recorded, result, threading.get_ident(), fire is not None)
                )
            return result

        return call

    def _take_fault(self, name: str) -> tuple[int | None] | None:
        fault = next((f for f in self._faults if f[0] == name), None)
        if fault is None:
            return None
        fault[2] -= 1
        if fault[2]:
            return None
        self._faults.remove(fault)
        return (fault[1],)

    def _refuse(self, code: int, why: str) -> int:
        self.violations.append(why)
        return code

    def _handle(self) -> int:
        self._next += 0x10
        return self._next

    @property
    def initialised(self) -> bool:
        """Whether acl.init has run and acl.finalize has not."""
        return self._inited

    def _ctx_code(self) -> int:
        if not self._inited:
            return UNINITIALIZE
        ctx = self._current.get(threading.get_ident())
        return 0 if ctx in self._contexts else RT_CONTEXT_NULL

    def _need_ctx(self, call: str) -> int:
        code = self._ctx_code()
        return self._refuse(code, f"{call}: no current context in this thread") if code else 0

    # -- leaks --------------------------------------------------------------------------------
    def leaks(self) -> list[str]:
        """Everything created and not released, one line each (empty when all is released).

        AscendCL itself being initialised is not listed: it stays so until the process exits
        (see :attr:`initialised`).
        """
        out = [
            f"rt.set_device({d}) x{n} without reset_device"
            for d, n in self._device_refs.items()
            if n
        ]
        out += [f"context {h:#x}" for h in self._contexts] + [
            f"stream {h:#x}" for h in self._streams
        ]
        out += [f"model {m}" for m in self._models] + [f"model desc {h:#x}" for h in self._descs]
        out += [f"dataset {h:#x}" for h in self._datasets] + [
            f"data buffer {h:#x}" for h in self._buffers
        ]
        out += [f"device memory {p:#x} ({len(b)} B)" for p, b in self._device.items()]
        return out + [f"host memory {p:#x} ({len(b)} B)" for p, b in self._host.items()]

    # -- top level ----------------------------------------------------------------------------
    def _init(self, *config: Any) -> int:
        if self._inited:
            # Old and new runtimes alike return REPEAT_INITIALIZE and carry on; the newest
            # documents it as ignorable (hicann/runtime src/acl/aclrt_impl/acl.cpp aclInitImpl,
            # docs/zh/api_ref/02_initialization_and_deinitialization.md).
            return REPEAT_INITIALIZE
        if self._finalized and not self.init_after_finalize:
            # Older runtimes: aclInit "can be called only once in a process" (hicann/runtime
            # include/external/acl/acl_rt.h still says so); AscendCL's acl.cpp of 2019-2020
            # kept its init flag set after aclFinalize, so a second aclInit answered
            # REPEAT_INITIALIZE while nothing worked any more.
            return self._refuse(
                REPEAT_INITIALIZE, "acl.init after acl.finalize: this runtime initialises once"
            )
        self._inited, self._finalized = True, False
        return 0

    def _finalize(self) -> int:
        if not self._inited:
            return self._refuse(REPEAT_FINALIZE, "acl.finalize: not initialised")
        alive = self.leaks()
        if alive:
            return self._refuse(INVALID_PARAM, f"acl.finalize while alive: {alive}")
        self._inited, self._finalized = False, True
        return 0

    def _get_soc_name(self) -> str:
        # aclrtGetSocName: the name alone, null on failure (hicann/runtime
        # include/external/acl/acl_base_rt.h); it needs no aclInit (it reads the SoC itself).
        return self.soc_name

    def _create_data_buffer(self, ptr: int, size: int) -> int:
        mem = self._device.get(ptr, self._host.get(ptr))
        if mem is None or not 0 < size <= len(mem):
            self.violations.append(f"create_data_buffer({ptr:#x}, {size}): not a live buffer")
            return 0
        h = self._handle()
        self._buffers[h] = (ptr, size)
        return h

    def _destroy_data_buffer(self, h: int) -> int:
        if self._buffers.pop(h, None) is None:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"destroy_data_buffer({h:#x}): not alive")
        return 0

    def _get_data_buffer_addr(self, h: int) -> int:
        return self._buffers.get(h, (0, 0))[0]

    def _get_data_buffer_size_v2(self, h: int) -> int:
        return self._buffers.get(h, (0, 0))[1]

    # -- rt -----------------------------------------------------------------------------------
    def _rt_set_device(self, dev: int) -> int:
        if not self._inited:
            return self._refuse(UNINITIALIZE, "rt.set_device before acl.init")
        if not (isinstance(dev, int) and 0 <= dev < self.device_count):
            return self._refuse(RT_INVALID_DEVICEID, f"rt.set_device({dev}): no such device")
        self._device_refs[dev] = self._device_refs.get(dev, 0) + 1
        return 0

    def _rt_reset_device(self, dev: int) -> int:
        if not self._device_refs.get(dev):
            return self._refuse(RT_INVALID_DEVICEID, f"rt.reset_device({dev}) without set_device")
        if self._device_refs[dev] == 1 and dev in self._contexts.values():
            return self._refuse(INVALID_PARAM, f"rt.reset_device({dev}): contexts still alive")
        self._device_refs[dev] -= 1
        return 0

    def _rt_create_context(self, dev: int) -> tuple[int, int]:
        if not self._device_refs.get(dev):
            return 0, self._refuse(RT_INVALID_DEVICEID, "rt.create_context before rt.set_device")
        h = self._handle()
        self._contexts[h] = dev
        self._current[threading.get_ident()] = h
        return h, 0

    def _rt_set_context(self, ctx: int) -> int:
        if ctx not in self._contexts:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"rt.set_context({ctx}): not alive")
        self._current[threading.get_ident()] = ctx
        return 0

    def _rt_destroy_context(self, ctx: int) -> int:
        if ctx not in self._contexts:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"rt.destroy_context({ctx}): not alive")
        owned = [s for s, c in self._streams.items() if c == ctx]
        owned += [m for m, model in self._models.items() if model.context == ctx]
        if owned:
            return self._refuse(INVALID_PARAM, f"rt.destroy_context: streams/models alive {owned}")
        del self._contexts[ctx]
        self._current = {t: c for t, c in self._current.items() if c != ctx}
        return 0

    def _rt_create_stream(self) -> tuple[int, int]:
        if code := self._need_ctx("rt.create_stream"):
            return 0, code
        h = self._handle()
        self._streams[h] = self._current[threading.get_ident()]
        self._pending[h] = []
        return h, 0

    def _rt_destroy_stream(self, s: int) -> int:
        if s not in self._streams:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"rt.destroy_stream({s}): not alive")
        if self._pending.pop(s):
            self.violations.append("rt.destroy_stream with unsynchronised tasks")
        del self._streams[s]
        return 0

    def _rt_synchronize_stream(self, s: int) -> int:
        if code := self._need_ctx("rt.synchronize_stream"):
            return code
        if s not in self._streams:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"rt.synchronize_stream({s}): not alive")
        tasks, self._pending[s] = self._pending[s], []
        results = [task() for task in tasks]
        self._dirty = {p: owner for p, owner in self._dirty.items() if owner != s}
        return next((r for r in results if r), 0)

    def _rt_get_run_mode(self) -> tuple[int, int]:
        if not self._inited:
            return 0, self._refuse(UNINITIALIZE, "rt.get_run_mode before acl.init")
        return self.run_mode, 0

    def _alloc(self, pool: dict[int, bytearray], call: str, size: int) -> tuple[int, int]:
        if code := self._need_ctx(call):
            return 0, code
        if not (isinstance(size, int) and size > 0):
            return 0, self._refuse(INVALID_PARAM, f"{call}({size}): bad size")
        h = self._handle()
        pool[h] = bytearray(size)
        return h, 0

    def _rt_malloc(self, size: int, policy: int) -> tuple[int, int]:
        if policy not in (0, 1, 2):
            return 0, self._refuse(INVALID_PARAM, f"rt.malloc policy {policy}")
        return self._alloc(self._device, "rt.malloc", size)

    def _rt_malloc_host(self, size: int) -> tuple[int, int]:
        return self._alloc(self._host, "rt.malloc_host", size)

    def _release_mem(self, pool: dict[int, bytearray], call: str, ptr: int) -> int:
        if code := self._need_ctx(call):
            return code
        if ptr not in pool:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"{call}({ptr}): not a live pointer")
        if ptr in self._dirty:
            return self._refuse(INVALID_PARAM, f"{call}({ptr:#x}): a running task writes it")
        if any(p == ptr for p, _ in self._buffers.values()):
            return self._refuse(INVALID_PARAM, f"{call}({ptr:#x}): a data buffer still wraps it")
        del pool[ptr]
        return 0

    def _rt_free(self, ptr: int) -> int:
        return self._release_mem(self._device, "rt.free", ptr)

    def _rt_free_host(self, ptr: int) -> int:
        return self._release_mem(self._host, "rt.free_host", ptr)

    def _pools(self, side: str) -> list[dict[int, bytearray]]:
        if self.run_mode == ACL_DEVICE:  # the program's own memory is device memory too
            return [self._device, self._host]
        return [self._device] if side == "device" else [self._host]

    def _util_source(self, ptr: int) -> bytes | None:
        """The bytes behind a util pointer, or None (noting a violation) if its object is gone."""
        obj = self._util[ptr]
        # References now: the _util entry, `obj`, getrefcount's argument. Any more is the caller.
        if sys.getrefcount(obj) <= 3:
            self.violations.append(
                f"rt.memcpy reads {ptr:#x}, which points into an object the caller no longer "
                "holds (pyACL bytes_to_ptr page: its input must outlive the pointer)"
            )
            return None
        return obj if isinstance(obj, bytes) else obj.tobytes()

    def _rt_memcpy(self, dst: int, dst_max: int, src: int, count: int, kind: int) -> int:
        if code := self._need_ctx("rt.memcpy"):
            return code
        if kind not in _SIDES:
            return self._refuse(INVALID_PARAM, f"rt.memcpy kind {kind}")
        dst_side, src_side = _SIDES[kind]
        dmem = next((p[dst] for p in self._pools(dst_side) if dst in p), None)
        smem: bytes | bytearray | None = next(
            (p[src] for p in self._pools(src_side) if src in p), None
        )
        on_host = src_side == "host" or self.run_mode == ACL_DEVICE
        if smem is None and src in self._util and on_host:
            smem = self._util_source(src)
            if smem is None:
                return INVALID_PARAM  # the violation is noted by _util_source
        if dmem is None or smem is None:
            return self._refuse(INVALID_PARAM, f"rt.memcpy kind {kind}: {dst:#x} <- {src:#x}")
        if not count <= dst_max <= len(dmem) or count > len(smem):
            return self._refuse(INVALID_PARAM, f"rt.memcpy {count} B into {dst_max}/{len(dmem)} B")
        if src in self._dirty:
            return self._refuse(
                INVALID_PARAM, "rt.memcpy reads an output before synchronize_stream"
            )
        dmem[:count] = smem[:count]
        return 0

    # -- util ---------------------------------------------------------------------------------
    def _util_bytes_to_ptr(self, data: bytes) -> int:
        # pyACL bytes_convert.cpp: PyBytes_Check, else ValueError("needs an byte as argument");
        # the pointer is PyBytes_AsString(data), into the object itself (no copy).
        if not isinstance(data, bytes):
            raise ValueError("needs an byte as argument")
        h = self._handle()
        self._util[h] = data
        return h

    def _util_numpy_to_ptr(self, data: np.ndarray) -> int:
        # pyACL numpy_convert.cpp: PyArray_Check, else ValueError; a discontiguous array only
        # warns, and memcpy then copies the wrong bytes. The pointer is the array's own data.
        if not isinstance(data, np.ndarray):
            raise ValueError("needs an ndarray as argument")
        if not data.flags.c_contiguous:
            self.violations.append("util.numpy_to_ptr: discontiguous ndarray")
        h = self._handle()
        self._util[h] = data
        return h

    def _util_ptr_to_numpy(self, ptr: int, shape: tuple[int, ...], npy_type: int) -> Any:
        # pyACL numpy_convert.cpp: an ndarray over the memory at ptr (no copy), shape a tuple
        # of ints, type a numpy type number.
        if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
            raise ValueError("the second argument is not list of int")
        dtype = NPY_TYPES.get(npy_type)
        mem = self._host.get(ptr, self._device.get(ptr) if self.run_mode == ACL_DEVICE else None)
        count = int(np.prod(shape, dtype=np.int64))
        if dtype is None or mem is None or count * dtype.itemsize > len(mem):
            self.violations.append(f"util.ptr_to_numpy({ptr:#x}, {shape}, {npy_type}): bad")
            return None
        return np.frombuffer(mem, dtype=dtype, count=count).reshape(shape)

    def _util_ptr_to_bytes(self, ptr: int, size: int) -> bytes:
        mem = self._host.get(ptr, self._device.get(ptr) if self.run_mode == ACL_DEVICE else None)
        if mem is None or size > len(mem):
            self.violations.append(f"util.ptr_to_bytes({ptr:#x}, {size}): not a live host buffer")
            return b""
        return bytes(mem[:size])

    # -- mdl ----------------------------------------------------------------------------------
    def _mdl_load_from_file(self, path: str) -> tuple[int, int]:
        if code := self._need_ctx("mdl.load_from_file"):
            return 0, code
        try:
            om = json.loads(Path(path).read_text())
        except FileNotFoundError:
            return 0, self._refuse(INVALID_FILE, f"mdl.load_from_file({path}): no such file")
        except (ValueError, UnicodeDecodeError):
            return 0, self._refuse(DESERIALIZE_MODEL, f"mdl.load_from_file({path}): not an .om")
        try:
            proto = onnx.load(om["onnx"])
        except (OSError, KeyError, TypeError):
            return 0, self._refuse(READ_MODEL_FAILURE, f"mdl.load_from_file({path}): bad source")
        if om.get("soc_version") != self.soc_name:
            # ATC's --soc_version must name the chip the .om runs on (ascend-facts §4.3,
            # [ATC-FW]); which code the runtime then returns is not documented.
            return 0, self._refuse(
                DESERIALIZE_MODEL,
                f"mdl.load_from_file({path}): built for {om.get('soc_version')}, "
                f"this is {self.soc_name}",
            )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        compiled = as_compiled(proto, om.get("precision_mode") or ATC_DEFAULT_PRECISION)
        session = ort.InferenceSession(
            compiled.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        inits = {t.name for t in proto.graph.initializer}
        ins, outs = _tensors(proto.graph.input, inits), _tensors(proto.graph.output, set())
        model = _Model(self._current[threading.get_ident()], session, ins, outs)
        model.cur_dims = [dims for _, dims, _ in model.outputs]
        h = self._handle()
        self._models[h] = model
        return h, 0

    def _mdl_unload(self, mid: int) -> int:
        if code := self._need_ctx("mdl.unload"):
            return code
        if self._models.pop(mid, None) is None:
            return self._refuse(INVALID_MODEL_ID, f"mdl.unload({mid}): not loaded")
        return 0

    def _mdl_create_desc(self) -> int:
        if not self._inited:
            self.violations.append("mdl.create_desc before acl.init")
            return 0
        h = self._handle()
        self._descs[h] = None
        return h

    def _mdl_get_desc(self, desc: int, mid: int) -> int:
        if desc not in self._descs:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"mdl.get_desc: desc {desc} not alive")
        if mid not in self._models:
            return self._refuse(INVALID_MODEL_ID, f"mdl.get_desc: model {mid} not loaded")
        self._descs[desc] = self._models[mid]
        return 0

    def _mdl_destroy_desc(self, desc: int) -> int:
        if desc not in self._descs:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"mdl.destroy_desc({desc}): not alive")
        del self._descs[desc]
        return 0

    def _described(self, call: str, desc: int) -> _Model | None:
        model = self._descs.get(desc)
        if model is None:
            self.violations.append(f"{call}: desc {desc} not alive or not filled by get_desc")
        return model

    def _mdl_get_num_inputs(self, desc: int) -> int:
        model = self._described("mdl.get_num_inputs", desc)
        return len(model.inputs) if model else 0

    def _mdl_get_num_outputs(self, desc: int) -> int:
        model = self._described("mdl.get_num_outputs", desc)
        return len(model.outputs) if model else 0

    def _tensor(self, call: str, desc: int, i: int, outputs: bool) -> Any:
        model = self._described(call, desc)
        tensors = (model.outputs if outputs else model.inputs) if model else []
        if not 0 <= i < len(tensors):
            self.violations.append(f"{call}: index {i} out of range")
            return None
        return tensors[i]

    def _mdl_get_input_size_by_index(self, desc: int, i: int) -> int:
        t = self._tensor("mdl.get_input_size_by_index", desc, i, False)
        return int(np.prod(t[1], dtype=np.int64)) * t[2].itemsize if t else 0

    def _mdl_get_output_size_by_index(self, desc: int, i: int) -> int:
        t = self._tensor("mdl.get_output_size_by_index", desc, i, True)
        return int(np.prod(t[1], dtype=np.int64)) * t[2].itemsize if t else 0

    def _mdl_get_output_data_type(self, desc: int, i: int) -> int:
        t = self._tensor("mdl.get_output_data_type", desc, i, True)
        return ACL_DTYPE[t[2]] if t else -1

    def _mdl_get_cur_output_dims(self, desc: int, i: int) -> tuple[dict[str, Any], int]:
        if self._tensor("mdl.get_cur_output_dims", desc, i, True) is None:
            return {}, INVALID_PARAM
        dims = list(self._descs[desc].cur_dims[i])  # type: ignore[union-attr]
        return {"name": self._descs[desc].outputs[i][0], "dimCount": len(dims), "dims": dims}, 0  # type: ignore[union-attr]

    def _mdl_create_dataset(self) -> int:
        h = self._handle()
        self._datasets[h] = []
        return h

    def _mdl_add_dataset_buffer(self, ds: int, buf: int) -> tuple[int, int]:
        if ds not in self._datasets or buf not in self._buffers:
            return 0, self._refuse(INVALID_RESOURCE_HANDLE, "mdl.add_dataset_buffer: not alive")
        self._datasets[ds].append(buf)
        return ds, 0

    def _mdl_destroy_dataset(self, ds: int) -> int:
        if self._datasets.pop(ds, None) is None:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"mdl.destroy_dataset({ds}): not alive")
        return 0

    def _mdl_get_dataset_num_buffers(self, ds: int) -> int:
        return len(self._datasets.get(ds, []))

    def _mdl_get_dataset_buffer(self, ds: int, i: int) -> int:
        bufs = self._datasets.get(ds, [])
        return bufs[i] if 0 <= i < len(bufs) else 0

    def _bound(self, ds: int, tensors: list[Any], code: int) -> list[bytearray] | int:
        bufs = self._datasets.get(ds)
        if bufs is None or len(bufs) != len(tensors):
            return self._refuse(
                code, f"dataset {ds} does not match the model's {len(tensors)} tensors"
            )
        mems = []
        for buf, (name, dims, dtype) in zip(bufs, tensors, strict=True):
            ptr, size = self._buffers.get(buf, (0, 0))
            need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if ptr not in self._device or size < need:
                return self._refuse(code, f"buffer for {name!r} is dead or under {need} B")
            mems.append(self._device[ptr])
        return mems

    def _launch(self, call: str, mid: int, ins: int, outs: int) -> Callable[[], int] | int:
        if code := self._need_ctx(call):
            return code
        model = self._models.get(mid)
        if model is None:
            return self._refuse(INVALID_MODEL_ID, f"{call}: model {mid} not loaded")
        in_mems = self._bound(ins, model.inputs, MODEL_INPUT_NOT_MATCH)
        out_mems = self._bound(outs, model.outputs, MODEL_OUTPUT_NOT_MATCH)
        if isinstance(in_mems, int) or isinstance(out_mems, int):
            return in_mems if isinstance(in_mems, int) else out_mems  # type: ignore[return-value]

        def work() -> int:
            feeds = {n: np.frombuffer(bytes(m), dt, count=int(np.prod(d))).reshape(d)
                     for (n, d, dt), m in zip(model.inputs, in_mems, strict=True)}  # fmt: skip
            results = model.session.run(None, feeds)
            for j, (mem, arr) in enumerate(zip(out_mems, results, strict=True)):
                mem[: arr.nbytes] = np.ascontiguousarray(arr).tobytes()
                model.cur_dims[j] = tuple(arr.shape)
            return 0

        return work

    def _mdl_execute(self, mid: int, ins: int, outs: int) -> int:
        work = self._launch("mdl.execute", mid, ins, outs)
        return work if isinstance(work, int) else work()

    def _mdl_execute_async(self, mid: int, ins: int, outs: int, stream: int) -> int:
        if stream not in self._streams:
            return self._refuse(INVALID_RESOURCE_HANDLE, f"mdl.execute_async: stream {stream}")
        if self._streams[stream] != self._current.get(threading.get_ident()):
            return self._refuse(
                RT_STREAM_CONTEXT, "mdl.execute_async: stream not in current context"
            )
        work = self._launch("mdl.execute_async", mid, ins, outs)
        if isinstance(work, int):
            return work
        self._pending[stream].append(work)
        self._dirty.update((self._buffers[b][0], stream) for b in self._datasets[outs])
        return 0


def documented_sequence(
    n_in: int, n_out: int, execute_async: bool = True, legacy_util: bool = False
) -> tuple[list[str], list[str], list[str]]:
    """The calls of ascend-facts §4.1 for a model with ``n_in`` inputs and ``n_out`` outputs.

    Returns the (load, run, release) parts, as hetnpu's backend should make them for the first
    compile in a process: ``init`` once, the chip's name for ATC, buffers allocated once at load
    (inputs, then outputs), host buffers for outputs; a run makes the context current in the
    calling thread; the release mirrors the load in reverse, without ``finalize`` (AscendCL
    stays initialised until the process exits). ``legacy_util``: older pyacl's util calls.
    """
    load = ["init", "get_soc_name", "rt.set_device", "rt.create_context", "rt.create_stream",
            "rt.get_run_mode", "mdl.load_from_file", "mdl.create_desc", "mdl.get_desc",
            "mdl.get_num_inputs", "mdl.get_num_outputs", *["mdl.get_input_size_by_index"] * n_in,
            *["mdl.get_output_size_by_index"] * n_out, *["rt.malloc"] * (n_in + n_out),
            "mdl.create_dataset", *["create_data_buffer", "mdl.add_dataset_buffer"] * n_in,
            "mdl.create_dataset", *["create_data_buffer", "mdl.add_dataset_buffer"] * n_out,
            *["rt.malloc_host"] * n_out, *["mdl.get_output_data_type"] * n_out]  # fmt: skip
    execute = ["mdl.execute_async", "rt.synchronize_stream"] if execute_async else ["mdl.execute"]
    to_ptr, from_ptr = (
        ("util.numpy_to_ptr", "util.ptr_to_numpy") if legacy_util
        else ("util.bytes_to_ptr", "util.ptr_to_bytes")
    )  # fmt: skip
    run = ["rt.set_context", *[to_ptr, "rt.memcpy"] * n_in, *execute,
           *["mdl.get_cur_output_dims", "rt.memcpy", from_ptr] * n_out]  # fmt: skip
    release = ["rt.set_context", *["destroy_data_buffer"] * (n_in + n_out),
               "mdl.destroy_dataset", "mdl.destroy_dataset", *["rt.free"] * (n_in + n_out),
               *["rt.free_host"] * n_out, "mdl.unload", "mdl.destroy_desc", "rt.destroy_stream",
               "rt.destroy_context", "rt.reset_device"]  # fmt: skip
    return load, run, release


RELEASES = {
    "destroy_data_buffer": "data buffer", "mdl.destroy_dataset": "dataset",
    "rt.free": "device buffer", "rt.free_host": "host buffer", "mdl.unload": "model",
    "mdl.destroy_desc": "desc", "rt.destroy_stream": "stream", "rt.destroy_context": "context",
    "rt.reset_device": "reset_device", "finalize": "finalize at exit",
}  # fmt: skip
"""Release call -> what it releases, for summaries."""


def released(calls: Sequence[Call]) -> str:
    """What the successful release calls in ``calls`` released, e.g. '2 device buffers, model'."""
    counts: dict[str, int] = {}
    for c in calls:
        if c.name in RELEASES and c.result == 0:
            counts[RELEASES[c.name]] = counts.get(RELEASES[c.name], 0) + 1
    return ", ".join(f"{n} {what}s" if n > 1 else what for what, n in counts.items()) or "nothing"


SOC_VERSIONS = {"Ascend310", "Ascend310P3", "Ascend310B1", "Ascend310B4", "Ascend910A",
                "Ascend910B1", "Ascend910B2", "Ascend910B3", "Ascend910B4"}  # fmt: skip
"""--soc_version values seen in ascend-facts §4.3."""

PRECISION_MODES = frozenset(FP16_COMPUTE)
"""--precision_mode values of ATC's option pages (sources at :data:`FP16_COMPUTE`)."""

NO_FP32_KERNEL = frozenset({"Conv", "AveragePool"})
"""Ops whose CANN 8.0.0 pages say float32 is not supported under must_keep_origin_dtype
(hiascend.com .../canncommercial/800/apiref/aolapi/ atlasoxol_09_0040.html Conv,
atlasoxol_09_0022.html AveragePool); older precision pages: the mode "cannot be used" then,
naming Conv2D."""

ONNX_INPUT_FORMATS = {"NCHW": None, "NCDHW": None, "ND": 4}
"""--input_format values for ONNX -> the most dims each admits (None: no limit stated). ATC's
--input_format page (hiascend.com .../canncommercial/800/devaids/atc/atlasatcparam_16_0015.html):
"NCHW (default), NCDHW, and ND (any format with N <= 4)", one value for all inputs."""


class FakeAtc:
    """A stand-in ``atc``: checks the arguments (§4.3) and writes a JSON .om naming the .onnx."""

    def __init__(self, *, fail_stderr: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_stderr = fail_stderr

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        problem = self._check(opts, args)
        if problem or self.fail_stderr:
            return subprocess.CompletedProcess(
                list(args), 255, "ATC run failed\n", problem or self.fail_stderr
            )
        record = {k: opts.get(k) for k in ("soc_version", "precision_mode", "input_shape")}
        record.update(fake_om=1, onnx=str(Path(opts["model"]).resolve()))
        Path(opts["output"] + ".om").write_text(json.dumps(record))
        return subprocess.CompletedProcess(list(args), 0, "ATC run success\n", "")

    @staticmethod
    def _check(opts: dict[str, str], args: Sequence[str]) -> str | None:
        known = {"model", "framework", "output", "soc_version", "input_shape", "input_format",
                 "precision_mode", "log"}  # fmt: skip
        if len(opts) != len(args) or set(opts) - known:
            return f"E10001: unexpected arguments {sorted(set(opts) - known) or list(args)}"
        if opts.get("framework") != "5" or opts.get("soc_version") not in SOC_VERSIONS:
            return f"E10001: framework {opts.get('framework')} / soc {opts.get('soc_version')}"
        mode = opts.get("precision_mode", ATC_DEFAULT_PRECISION)
        if opts.get("log") != "error" or mode not in PRECISION_MODES:
            return f"E10001: Value [{mode}] for --precision_mode (or --log) is invalid"
        try:
            model = onnx.load(opts["model"])
        except (KeyError, OSError):
            return f"E10016: cannot open model {opts.get('model')}"
        inputs = _tensors(model.graph.input, {t.name for t in model.graph.initializer})
        shapes = ";".join(f"{n}:{','.join(map(str, d))}" for n, d, _ in inputs)
        if opts.get("input_shape") != shapes:
            return f"E10001: --input_shape should be {shapes!r}"
        fmt = opts.get("input_format", "NCHW")
        if fmt not in ONNX_INPUT_FORMATS:
            return f"E10001: Value [{fmt}] for --input_format is not one of ONNX's"
        most = ONNX_INPUT_FORMATS[fmt]
        deep = [n for n, d, _ in inputs if most is not None and len(d) > most]
        if deep:
            return f"E10001: --input_format={fmt} admits at most {most} dims; input {deep[0]!r}"
        if mode == "must_keep_origin_dtype":
            types = _elem_types(model)
            for node in model.graph.node:
                first = types.get(node.input[0]) if node.input else None
                if node.op_type in NO_FP32_KERNEL and first == TensorProto.FLOAT:
                    return (
                        f"E19999: {node.op_type} {node.name!r} has no float32 kernel, which "
                        "--precision_mode=must_keep_origin_dtype requires"
                    )
        return None
