"""AscendCL return codes (``aclError``), the error hetnpu raises when an ``acl`` call fails, and
:class:`AclCalls`, the one place that calls ``acl`` and checks what each call returns. It also
keeps AscendCL initialised once per process (finalised at exit) and bridges the pyacl versions
that differ in how host memory reaches Python (``bytes_to_ptr`` or the older ``numpy_to_ptr``).

The table is ascend-facts §4.2, itself from the runtime's ``aclError`` reference [RT-ERR]:
0 is success; 1xxxxx are user or parameter errors, 2xxxxx resource errors, 3xxxxx business
errors and 5xxxxx internal errors; 107xxx and 207xxx are runtime codes passed through.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from typing import Any

import numpy as np

from hetnpu.errors import HetnpuError

__all__ = [
    "ACL_ERRORS",
    "ACL_ERROR_REPEAT_INITIALIZE",
    "ACL_ERROR_UNINITIALIZE",
    "ACL_SUCCESS",
    "UTIL_PAIRS",
    "AclCalls",
    "AclError",
    "code_name",
    "describe_code",
    "finalize_at_exit",
    "finalize_owned",
    "missing_util",
]

ACL_SUCCESS = 0
ACL_ERROR_UNINITIALIZE = 100001
ACL_ERROR_REPEAT_INITIALIZE = 100002
NPY_UINT8 = 2
"""``ptr_to_numpy``'s type code for bytes (pyACL ``ptr_to_numpy`` page; numpy's NPY_UINT8)."""

ACL_ERRORS: dict[int, str] = {
    100000: "ACL_ERROR_INVALID_PARAM",
    100001: "ACL_ERROR_UNINITIALIZE",
    100002: "ACL_ERROR_REPEAT_INITIALIZE",
    100003: "ACL_ERROR_INVALID_FILE",
    100011: "ACL_ERROR_INVALID_MODEL_ID",
    100012: "ACL_ERROR_DESERIALIZE_MODEL",
    100013: "ACL_ERROR_PARSE_MODEL",
    100014: "ACL_ERROR_READ_MODEL_FAILURE",
    100017: "ACL_ERROR_MODEL_INPUT_NOT_MATCH",
    100018: "ACL_ERROR_MODEL_OUTPUT_NOT_MATCH",
    100019: "ACL_ERROR_MODEL_NOT_DYNAMIC",
    100037: "ACL_ERROR_REPEAT_FINALIZE",
    200000: "ACL_ERROR_BAD_ALLOC",
    200001: "ACL_ERROR_API_NOT_SUPPORT",
    200002: "ACL_ERROR_INVALID_DEVICE",
    200003: "ACL_ERROR_MEMORY_ADDRESS_UNALIGNED",
    200004: "ACL_ERROR_RESOURCE_NOT_MATCH",
    200005: "ACL_ERROR_INVALID_RESOURCE_HANDLE",
    300000: "ACL_ERROR_STORAGE_OVER_LIMIT",
    500000: "ACL_ERROR_INTERNAL_ERROR",
    500001: "ACL_ERROR_FAILURE",
    500002: "ACL_ERROR_GE_FAILURE",
    500003: "ACL_ERROR_RT_FAILURE",
    500004: "ACL_ERROR_DRV_FAILURE",
    500005: "ACL_ERROR_PROFILING_FAILURE",
    # Runtime codes passed through AscendCL (ascend-facts §4.2, second table).
    107000: "ACL_ERROR_RT_PARAM_INVALID",
    107001: "ACL_ERROR_RT_INVALID_DEVICEID",
    107002: "ACL_ERROR_RT_CONTEXT_NULL",
    107003: "ACL_ERROR_RT_STREAM_CONTEXT",
    107019: "ACL_ERROR_RT_WAIT_TIMEOUT",
    107020: "ACL_ERROR_RT_TASK_TIMEOUT",
    207000: "ACL_ERROR_RT_FEATURE_NOT_SUPPORT",
    207001: "ACL_ERROR_RT_MEMORY_ALLOCATION",
    207003: "ACL_ERROR_RT_AICORE_OVER_FLOW",
    207004: "ACL_ERROR_RT_NO_DEVICE",
    207008: "ACL_ERROR_RT_NO_STREAM_RESOURCE",
}
"""aclError code -> its constant's name (ascend-facts §4.2)."""

_FAMILIES = {
    1: "user or parameter error",
    2: "resource error",
    3: "business error",
    5: "internal error",
}
"""Leading digit of a six-digit code -> its family (ascend-facts §4.2, 'Code ranges')."""


def code_name(code: int) -> str | None:
    """The constant's name of an aclError ``code``, or None if §4.2 does not list it."""
    return ACL_ERRORS.get(code)


def describe_code(code: int) -> str:
    """``code`` with its name, or with its family when the name is not known.

    Examples
    --------
    >>> describe_code(207001)
    '207001 ACL_ERROR_RT_MEMORY_ALLOCATION'
    >>> describe_code(199999)
    '199999 (aclError not in the table; 1xxxxx: user or parameter error)'
    """
    name = code_name(code)
    if name is not None:
        return f"{code} {name}"
    family = _FAMILIES.get(code // 100_000) if 100_000 <= code < 1_000_000 else None
    if family is None:
        return f"{code} (not an aclError code)"
    return f"{code} (aclError not in the table; {code // 100_000}xxxxx: {family})"


class AclError(HetnpuError):
    """An AscendCL call failed: a non-zero return code, a null handle or an exception.

    Attributes
    ----------
    call : str
        The call as documented, e.g. ``"acl.rt.malloc"``.
    code : int or None
        The aclError code it returned; None when the call has no return code (a constructor
        returned a null handle, a getter a value that contradicts the model).
    """

    def __init__(self, call: str, code: int | None, detail: str = "") -> None:
        self.call = call
        self.code = code
        what = describe_code(code) if code is not None else ""
        sep = ", " if what and detail else ""
        super().__init__(f"{call} failed: {what}{sep}{detail}")


class _InitRecord:
    """Which ``acl`` modules hetnpu has initialised in this process, and which it owns.

    Held weakly where the module allows it, so that a stand-in module a test drops is forgotten
    with it.
    """

    def __init__(self) -> None:
        self._weak: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._strong: dict[int, tuple[Any, bool]] = {}

    def get(self, module: Any) -> bool | None:
        try:
            return self._weak.get(module)
        except TypeError:
            held = self._strong.get(id(module))
            return held[1] if held is not None else None

    def set(self, module: Any, owned: bool) -> None:
        try:
            self._weak[module] = owned
        except TypeError:
            self._strong[id(module)] = (module, owned)

    def pop(self, module: Any) -> bool | None:
        try:
            return self._weak.pop(module, None)
        except TypeError:
            held = self._strong.pop(id(module), None)
            return held[1] if held is not None else None

    def owned(self) -> list[Any]:
        return [m for m, own in list(self._weak.items()) if own] + [
            m for m, own in list(self._strong.values()) if own
        ]


_INIT_LOCK = threading.Lock()
_INITIALISED = _InitRecord()
_EXIT_HOOK: list[bool] = []  # non-empty once finalize_at_exit is registered with atexit


def finalize_owned(module: Any) -> bool:
    """``acl.finalize`` for ``module`` if hetnpu's own ``acl.init`` initialised it.

    This is what the ``atexit`` hook does for every such module. An application that wants
    AscendCL shut down earlier may call it once it has closed every executable; a later compile
    initialises again where the runtime allows it (see :meth:`AclCalls.ensure_init`).

    Returns
    -------
    bool
        Whether ``acl.finalize`` was called (False: hetnpu did not initialise ``module``, or it
        was already finalised).

    Raises
    ------
    AclError
        ``acl.finalize`` failed.
    """
    with _INIT_LOCK:
        if not _INITIALISED.pop(module):
            return False
        AclCalls(module).ret("finalize")
        return True


def finalize_at_exit() -> None:
    """The ``atexit`` hook: finalise every ``acl`` module hetnpu initialised.

    A failure is not reported: at exit there is nobody left to act on it, and ``aclFinalize``
    itself releases whatever the process still held (hicann/runtime
    ``docs/zh/api_ref/02_initialization_and_deinitialization.md``).
    """
    for module in _INITIALISED.owned():
        with contextlib.suppress(AclError):
            finalize_owned(module)


class AclCalls:
    """Calls ``acl`` by dotted name and checks each result by its return convention (§4.1).

    Creators return ``(value, ret)``, plain actions ``ret``, constructors and getters the bare
    value (a null handle on failure). Whatever fails, including an exception raised by pyacl
    itself, leaves as an :class:`AclError` naming the call.
    """

    def __init__(self, module: Any) -> None:
        self.module = module

    def invoke(self, call: str, *args: Any) -> Any:
        """``acl.<call>(*args)`` as is, only with exceptions turned into AclError."""
        fn = self.module
        try:
            for part in call.split("."):
                fn = getattr(fn, part)
            return fn(*args)
        except Exception as exc:  # pyacl raises plain exceptions for bad arguments or states
            raise AclError(f"acl.{call}", None, f"raised {type(exc).__name__}: {exc}") from None

    def ret(self, call: str, *args: Any) -> None:
        """A plain action, which returns ``ret``."""
        ret = self.invoke(call, *args)
        if ret != ACL_SUCCESS:
            raise AclError(f"acl.{call}", ret)

    def value_ret(self, call: str, *args: Any) -> Any:
        """A creator, which returns ``(value, ret)``; the value."""
        value, ret = self.invoke(call, *args)
        if ret != ACL_SUCCESS:
            raise AclError(f"acl.{call}", ret)
        return value

    def handle(self, call: str, *args: Any) -> Any:
        """A constructor returning the handle alone, null (0 or None) when it failed."""
        value = self.invoke(call, *args)
        if not value:
            raise AclError(f"acl.{call}", None, "returned a null handle")
        return value

    # -- process-wide initialisation ----------------------------------------------------------
    def ensure_init(self, *, again: bool = False) -> None:
        """``acl.init`` the first time hetnpu needs AscendCL in this process; later, nothing.

        AscendCL stays initialised until the process exits, when :func:`finalize_at_exit`
        finalises it if this ``acl.init`` was the one that initialised it. Older runtimes allow
        one ``aclInit`` per process and none after ``aclFinalize`` (hicann/runtime
        ``include/external/acl/acl_rt.h``: "can be called only once in a process"), and a
        finalize shuts AscendCL down for every user in the process, so hetnpu neither
        finalises when its last model closes nor initialises per model. ``REPEAT_INITIALIZE``
        means the application initialised AscendCL already: that initialisation is used, and
        finalising is left to the application.

        Parameters
        ----------
        again : bool
            Call ``acl.init`` even if hetnpu did before: a call answered
            ``ACL_ERROR_UNINITIALIZE``, so someone finalised AscendCL since, and the newest
            runtime allows initialising after a finalize (the runtime page above).
        """
        with _INIT_LOCK:
            known = _INITIALISED.get(self.module)
            if known is not None and not again:
                return
            ret = self.invoke("init")
            if ret not in (ACL_SUCCESS, ACL_ERROR_REPEAT_INITIALIZE):
                raise AclError("acl.init", ret)
            owned = ret == ACL_SUCCESS
            _INITIALISED.set(self.module, owned)
            if owned and not _EXIT_HOOK:
                atexit.register(finalize_at_exit)
                _EXIT_HOOK.append(True)

    def soc_name(self) -> str:
        """The chip AscendCL runs on, as ATC's ``--soc_version`` names it (``acl.get_soc_name``,
        which returns the name alone, null on failure: ``aclrtGetSocName`` in hicann/runtime
        ``include/external/acl/acl_base_rt.h``)."""
        name = self.invoke("get_soc_name")
        if not isinstance(name, str) or not name:
            raise AclError("acl.get_soc_name", None, f"returned {name!r} instead of a chip name")
        return name

    # -- host memory as pyacl sees it ---------------------------------------------------------
    def host_pointer(self, array: np.ndarray) -> tuple[int, object]:
        """A host pointer to ``array``'s bytes, and the object it points into.

        The pointer is valid only while that object lives (pyACL ``bytes_to_ptr`` page:
        "the input's lifetime must exceed the output's"), so the caller keeps it until the
        copy that reads the pointer has returned. Older pyacl has no ``bytes_to_ptr``; then
        ``numpy_to_ptr`` on a C-contiguous array, as Huawei's samples fall back to
        (Ascend/samples ``resnet50_imagenet_classification/src/acl_net.py``).
        """
        if hasattr(self.module.util, "bytes_to_ptr"):
            data: object = array.tobytes()
            return self.handle("util.bytes_to_ptr", data), data
        data = np.ascontiguousarray(array)
        return self.handle("util.numpy_to_ptr", data), data

    def read_host(self, ptr: Any, size: int) -> bytes:
        """A copy of ``size`` bytes of host memory at ``ptr``.

        ``ptr_to_bytes`` copies already; the older ``ptr_to_numpy`` returns an array over the
        memory itself, which the next run overwrites, so it is copied here.
        """
        if hasattr(self.module.util, "ptr_to_bytes"):
            raw = self.invoke("util.ptr_to_bytes", ptr, size)
            if not isinstance(raw, bytes | bytearray) or len(raw) != size:
                raise AclError(
                    "acl.util.ptr_to_bytes", None, f"returned {_sized(raw)}, not {size} B"
                )
            return bytes(raw)
        view = self.invoke("util.ptr_to_numpy", ptr, (size,), NPY_UINT8)
        if not isinstance(view, np.ndarray) or view.nbytes != size:
            raise AclError("acl.util.ptr_to_numpy", None, f"returned {_sized(view)}, not {size} B")
        return view.tobytes()


def _sized(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.nbytes} B"
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} B"
    return repr(value)


UTIL_PAIRS = (("bytes_to_ptr", "ptr_to_bytes"), ("numpy_to_ptr", "ptr_to_numpy"))
"""The pyacl host-memory conversions hetnpu can use, newest first (pyACL util pages)."""


def missing_util(module: Any) -> str | None:
    """Why ``module.util`` lacks every pair of :data:`UTIL_PAIRS`, or None if one is complete."""
    util = getattr(module, "util", None)
    if any(all(hasattr(util, name) for name in pair) for pair in UTIL_PAIRS):
        return None
    pairs = " or ".join("/".join(f"acl.util.{n}" for n in pair) for pair in UTIL_PAIRS)
    return f"the `acl` module has neither {pairs} to move data between host memory and Python"
