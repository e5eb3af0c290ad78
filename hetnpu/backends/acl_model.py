"""A stage loaded on an Ascend device through AscendCL (``acl``): the documented sequence of
ascend-facts §4.1 from ``rt.set_device`` to the output copies, and its teardown.

:class:`AscendExecutable` sets the device, creates a context and a stream, loads the .om
(``mdl.load_from_file``), reads the model description, and allocates one device buffer per
input and output, wrapped in data buffers and datasets, plus host buffers for the outputs; each
run copies inputs in, executes, and copies outputs out. Every destroy and free runs in reverse
order on ``close()`` and also when a call fails part-way through loading or running (after
draining the stream, should a launched model still be running). Runs from several threads are
serialised by a lock, each making the executable's context current in its thread
(``rt.set_context``). :mod:`hetnpu.backends.ascend` converts the stage and builds it.

Return conventions follow §4.1 exactly: creators return ``(value, ret)``, actions return
``ret``, pure getters and constructors return the value alone (a null handle on failure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hetnpu.backends.acl_errors import ACL_ERROR_UNINITIALIZE, AclCalls, AclError
from hetnpu.backends.atc import StageTensor, stage_inputs, stage_outputs
from hetnpu.errors import BackendUnavailableError, InputError

__all__ = ["ACL_DTYPES", "AscendExecutable"]

# Constants of ascend-facts §4.1 (the samples' constant.py [SAMP-SYNC]).
ACL_MEM_MALLOC_HUGE_FIRST = 0
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
ACL_MEMCPY_DEVICE_TO_DEVICE = 3
ACL_DEVICE = 0
"""Run mode: the program runs on the device's own CPU, so 'host' buffers are device memory."""

ACL_DTYPES: dict[int, np.dtype] = {
    code: np.dtype(t)
    for code, t in [(0, np.float32), (1, np.float16), (2, np.int8), (3, np.int32), (4, np.uint8),
                    (6, np.int16), (7, np.uint16), (8, np.uint32), (9, np.int64), (10, np.uint64),
                    (11, np.float64), (12, np.bool_), (16, np.complex64)]
}  # fmt: skip
"""aclDataType -> numpy dtype (ascend-facts §4.1, data type enum)."""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and value > 0


@dataclass
class _Held:
    """What an executable holds, released in the order of §4.1's teardown."""

    device_set: bool = False
    context: Any = None
    stream: Any = None
    model_id: Any = None
    desc: Any = None
    datasets: list[Any] = field(default_factory=list)
    data_buffers: list[Any] = field(default_factory=list)
    device_ptrs: list[Any] = field(default_factory=list)
    host_ptrs: list[Any] = field(default_factory=list)


class AscendExecutable:
    """One stage loaded on an Ascend device; ``run`` may be called from several threads.

    Device buffers are allocated once at load and reused, so runs are serialised by a lock;
    each run first makes the executable's context current in the calling thread.
    """

    engine = "ascendcl"

    def __init__(
        self,
        acl: Any,
        om_path: str | Path,
        model: onnx.ModelProto,
        *,
        device_id: int = 0,
        execute_async: bool = True,
    ) -> None:
        self.stage = model.graph.name
        self._inputs = stage_inputs(model)
        self._outputs = stage_outputs(model)
        self.input_names = tuple(t.name for t in self._inputs)
        self.output_names = tuple(t.name for t in self._outputs)
        self._acl = AclCalls(acl)
        self._device_id = device_id
        self._async = execute_async
        self._lock = threading.Lock()
        self._held = _Held()
        self._closed_by: str | None = None
        self._in_flight = False  # a launched execute_async not yet synchronised
        try:
            self._load(str(om_path))
        except BaseException as exc:
            self._release(exc)
            raise

    # -- load ---------------------------------------------------------------------------------
    def _load(self, om_path: str) -> None:
        acl, held, dev = self._acl, self._held, self._device_id
        acl.ensure_init()
        self._set_device()
        held.device_set = True
        held.context = acl.value_ret("rt.create_context", dev)
        held.stream = acl.value_ret("rt.create_stream")
        on_device = acl.value_ret("rt.get_run_mode") == ACL_DEVICE
        # On the device's own CPU, "host" memory is device memory: copies are D2D [SAMP-LITE].
        self._h2d = ACL_MEMCPY_DEVICE_TO_DEVICE if on_device else ACL_MEMCPY_HOST_TO_DEVICE
        self._d2h = ACL_MEMCPY_DEVICE_TO_DEVICE if on_device else ACL_MEMCPY_DEVICE_TO_HOST
        held.model_id = acl.value_ret("mdl.load_from_file", om_path)
        held.desc = acl.handle("mdl.create_desc")
        acl.ret("mdl.get_desc", held.desc, held.model_id)
        n_in, n_out = len(self._inputs), len(self._outputs)
        self._query("mdl.get_num_inputs", held.desc, ok=n_in.__eq__, expected=f"{n_in} inputs")
        self._query("mdl.get_num_outputs", held.desc, ok=n_out.__eq__, expected=f"{n_out} outputs")
        in_sizes = [
            self._query(
                "mdl.get_input_size_by_index",
                held.desc,
                i,
                ok=t.nbytes.__eq__,
                expected=f"{t.nbytes} B for input {t.name!r}, {t.dtype}{list(t.dims)}",
            )
            for i, t in enumerate(self._inputs)
        ]
        out_sizes = [
            self._query(
                "mdl.get_output_size_by_index",
                held.desc,
                j,
                ok=_positive_int,
                expected=f"a byte size for output {t.name!r}",
            )
            for j, t in enumerate(self._outputs)
        ]
        self._in_dev = [self._malloc(size) for size in in_sizes]
        self._out_dev = [self._malloc(size) for size in out_sizes]
        self._in_dataset = self._dataset(self._in_dev)
        self._out_dataset = self._dataset(self._out_dev)
        for size in out_sizes:
            held.host_ptrs.append(acl.value_ret("rt.malloc_host", size))
        self._out_host = list(held.host_ptrs)
        self._out_dtypes = [
            ACL_DTYPES[
                self._query(
                    "mdl.get_output_data_type",
                    held.desc,
                    j,
                    ok=ACL_DTYPES.__contains__,
                    expected=f"an aclDataType of §4.1 for output {t.name!r}",
                )
            ]
            for j, t in enumerate(self._outputs)
        ]

    def _set_device(self) -> None:
        acl, dev = self._acl, self._device_id
        try:
            acl.ret("rt.set_device", dev)
            return
        except AclError as err:
            if err.code != ACL_ERROR_UNINITIALIZE:
                raise
        # Someone finalised AscendCL since hetnpu initialised it; the newest runtime allows
        # initialising again, older ones answer REPEAT_INITIALIZE and stay finalised.
        acl.ensure_init(again=True)
        try:
            acl.ret("rt.set_device", dev)
        except AclError as err:
            if err.code == ACL_ERROR_UNINITIALIZE:
                err.add_note(
                    "AscendCL was finalised in this process after hetnpu initialised it, and "
                    "this runtime does not initialise again (older CANN: one acl.init per "
                    "process); leave finalising to hetnpu's exit hook"
                )
            raise

    def _query(self, call: str, *args: Any, ok: Callable[[Any], bool], expected: str) -> Any:
        """A getter whose value alone must say whether it worked: check it against the model."""
        value = self._acl.invoke(call, *args)
        if not ok(value):
            raise AclError(
                f"acl.{call}",
                None,
                f"returned {value!r}, expected {expected} in stage {self.stage!r}",
            )
        return value

    def _malloc(self, size: int) -> tuple[Any, int]:
        ptr = self._acl.value_ret("rt.malloc", size, ACL_MEM_MALLOC_HUGE_FIRST)
        self._held.device_ptrs.append(ptr)
        return ptr, size

    def _dataset(self, buffers: list[tuple[Any, int]]) -> Any:
        acl, held = self._acl, self._held
        dataset = acl.handle("mdl.create_dataset")
        held.datasets.append(dataset)
        for ptr, size in buffers:
            buf = acl.handle("create_data_buffer", ptr, size)
            held.data_buffers.append(buf)
            acl.value_ret("mdl.add_dataset_buffer", dataset, buf)
        return dataset

    # -- run ----------------------------------------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy ``feeds`` to the device, execute, and return every output by name.

        Raises
        ------
        InputError
            An input is missing or has the wrong dtype or shape (the device is untouched).
        AclError
            An AscendCL call failed; everything the executable held has been released.
        BackendUnavailableError
            The executable was closed, or released after an earlier failure.
        """
        arrays = self._check_feeds(feeds)
        with self._lock:
            if self._closed_by is not None:
                raise BackendUnavailableError(
                    f"npu: stage {self.stage!r} is no longer loaded ({self._closed_by}); "
                    "compile it again"
                )
            try:
                return self._run_locked(arrays)
            except BaseException as exc:
                # After a failed device call the context's state is unknown: release it all.
                self._release(exc)
                raise

    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        arrays = []
        for t in self._inputs:
            if t.name not in feeds:
                raise InputError(f"npu: stage {self.stage!r}: missing input {t.name!r}")
            arr = np.asarray(feeds[t.name])
            if arr.dtype != t.dtype or arr.shape != t.dims:
                raise InputError(
                    f"npu: stage {self.stage!r}: input {t.name!r} is {arr.dtype}{list(arr.shape)}, "
                    f"the model expects {t.dtype}{list(t.dims)}"
                )
            arrays.append(np.ascontiguousarray(arr))
        return arrays

    def _run_locked(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        acl, held = self._acl, self._held
        acl.ret("rt.set_context", held.context)
        for (ptr, size), arr in zip(self._in_dev, arrays, strict=True):
            host, source = acl.host_pointer(arr)
            acl.ret("rt.memcpy", ptr, size, host, size, self._h2d)
            del source  # only now: `host` points into it until the copy has returned
        if self._async:
            acl.ret(
                "mdl.execute_async", held.model_id, self._in_dataset, self._out_dataset, held.stream
            )
            self._in_flight = True
            acl.ret("rt.synchronize_stream", held.stream)
            self._in_flight = False
        else:
            acl.ret("mdl.execute", held.model_id, self._in_dataset, self._out_dataset)
        return {t.name: self._fetch(j, t) for j, t in enumerate(self._outputs)}

    def _fetch(self, j: int, t: StageTensor) -> np.ndarray:
        acl = self._acl
        info = acl.value_ret("mdl.get_cur_output_dims", self._held.desc, j)
        dims = tuple(info.get("dims", ())) if isinstance(info, dict) else ()
        dtype, (dev_ptr, size), host_ptr = self._out_dtypes[j], self._out_dev[j], self._out_host[j]
        count = int(np.prod(dims, dtype=np.int64))
        if not isinstance(info, dict) or "dims" not in info or count * dtype.itemsize > size:
            raise AclError(
                "acl.mdl.get_cur_output_dims",
                None,
                f"returned {info!r} for output {t.name!r}, whose buffer holds {size} B of {dtype}",
            )
        acl.ret("rt.memcpy", host_ptr, size, dev_ptr, size, self._d2h)
        raw = acl.read_host(host_ptr, size)
        out = np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)
        # ATC may emit fp16 outputs for an fp32 graph; the session promises the ONNX dtypes.
        return out.astype(t.dtype) if dtype != t.dtype else out.copy()

    # -- release ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release every device resource in reverse order; safe to call twice.

        Raises
        ------
        AclError
            A destroy or free call failed; every other resource was still released.
        """
        with self._lock:
            if self._closed_by is None:
                self._closed_by = "closed"
            failures = self._release(None)
        if failures:
            first = failures[0]
            for other in failures[1:]:
                first.add_note(f"also: {other}")
            raise first

    def __enter__(self) -> AscendExecutable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _release(self, cause: BaseException | None) -> list[AclError]:
        """Destroy and free whatever is held, in §4.1's teardown order; return what failed.

        Each resource is forgotten once its release was attempted, even if that failed:
        retrying a failed free could release a pointer AscendCL has since handed out again.
        """
        if cause is not None and self._closed_by is None:
            self._closed_by = f"released after: {cause}"
        acl, held, failures = self._acl, self._held, []

        def attempt(call: str, *args: Any) -> None:
            try:
                acl.ret(call, *args)
            except AclError as err:
                failures.append(err)

        if held.context is not None:
            attempt("rt.set_context", held.context)  # close() may come from another thread
        if self._in_flight and held.stream is not None:
            # A failed synchronize may leave the model running: drain the stream before
            # freeing the buffers it writes.
            attempt("rt.synchronize_stream", held.stream)
            self._in_flight = False
        for buf in reversed(held.data_buffers):
            attempt("destroy_data_buffer", buf)
        for dataset in reversed(held.datasets):
            attempt("mdl.destroy_dataset", dataset)
        for ptr in reversed(held.device_ptrs):
            attempt("rt.free", ptr)
        for ptr in reversed(held.host_ptrs):
            attempt("rt.free_host", ptr)
        if held.model_id is not None:
            attempt("mdl.unload", held.model_id)
        if held.desc is not None:
            attempt("mdl.destroy_desc", held.desc)
        if held.stream is not None:
            attempt("rt.destroy_stream", held.stream)
        if held.context is not None:
            attempt("rt.destroy_context", held.context)
        if held.device_set:
            attempt("rt.reset_device", self._device_id)
        # No acl.finalize: AscendCL stays initialised for the process (AclCalls.ensure_init).
        self._held = _Held()
        if cause is not None:
            for err in failures:
                cause.add_note(f"while releasing after this error: {err}")
        return failures
