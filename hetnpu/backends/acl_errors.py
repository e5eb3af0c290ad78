"""AscendCL return codes (``aclError``), the error hetnpu raises when an ``acl`` call fails, and
:class:`AclCalls`, the one place that calls ``acl`` and checks what each call returns (it also
counts the process-wide ``acl.init`` / ``acl.finalize`` users).

The table is ascend-facts §4.2, itself from the runtime's ``aclError`` reference [RT-ERR]:
0 is success; 1xxxxx are user or parameter errors, 2xxxxx resource errors, 3xxxxx business
errors and 5xxxxx internal errors; 107xxx and 207xxx are runtime codes passed through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from hetnpu.errors import HetnpuError

__all__ = ["ACL_ERRORS", "ACL_SUCCESS", "AclCalls", "AclError", "code_name", "describe_code"]

ACL_SUCCESS = 0
ACL_ERROR_REPEAT_INITIALIZE = 100002

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


@dataclass
class _InitUse:
    module: Any  # held so that its id() cannot be reused while the entry lives
    owned: bool
    users: int = 0


_INIT_LOCK = threading.Lock()
_INIT_USES: dict[int, _InitUse] = {}


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

    def acquire_init(self) -> None:
        """``acl.init`` for the first user in the process; later users only count themselves.

        ``acl.init`` and ``acl.finalize`` are process-wide, so two NPU stages in one session
        must not finalise each other (``set_device``/``reset_device`` are reference-counted by
        AscendCL itself, §4.1). If the application initialised AscendCL already (init returns
        REPEAT_INITIALIZE), that initialisation is used and finalising is left to it.
        """
        with _INIT_LOCK:
            use = _INIT_USES.get(id(self.module))
            if use is None:
                ret = self.invoke("init")
                if ret not in (ACL_SUCCESS, ACL_ERROR_REPEAT_INITIALIZE):
                    raise AclError("acl.init", ret)
                use = _InitUse(self.module, owned=ret == ACL_SUCCESS)
                _INIT_USES[id(self.module)] = use
            use.users += 1

    def release_init(self) -> None:
        """Undo one :meth:`acquire_init`; the last user calls ``acl.finalize`` if it owns init."""
        with _INIT_LOCK:
            use = _INIT_USES[id(self.module)]
            use.users -= 1
            if use.users == 0:
                del _INIT_USES[id(self.module)]
                if use.owned:
                    self.ret("finalize")
