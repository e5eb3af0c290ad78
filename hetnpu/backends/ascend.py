"""The Ascend backend: real NPUs through AscendCL's Python binding ``acl`` (pyacl, from CANN).

A stage is converted to an offline model with ATC (:mod:`hetnpu.backends.atc`), then loaded and
run by :class:`~hetnpu.backends.acl_model.AscendExecutable` with the documented AscendCL
sequence of ascend-facts §4.1 (device, context, stream, model, buffers, datasets; every destroy
and free in reverse order on ``close()`` or when a call fails part-way). ``acl.init`` is
process-wide: it runs once, on the first compile, and AscendCL stays initialised until the
process exits (:meth:`~hetnpu.backends.acl_errors.AclCalls.ensure_init`).

The ATC ``--soc_version`` is the chip AscendCL reports (``acl.get_soc_name``); one given by the
caller or a chip preset must agree with it, since an .om runs only on the chip it was built for.
Host memory reaches Python through ``acl.util.bytes_to_ptr``/``ptr_to_bytes``, or through
``numpy_to_ptr``/``ptr_to_numpy`` on older pyacl that lacks them.

Return conventions follow §4.1 exactly: creators return ``(value, ret)``, actions return
``ret``, pure getters and constructors return the value alone (a null handle on failure).
Every failure becomes an :class:`~hetnpu.backends.acl_errors.AclError` naming the call and the
code with its §4.2 name. ``acl`` is imported only when a backend is asked for it, and both
``acl`` and the ATC runner can be injected (the tests pass a recording stand-in).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import onnx

from hetnpu.backends.acl_errors import AclCalls, AclError, missing_util
from hetnpu.backends.acl_model import ACL_DTYPES, AscendExecutable
from hetnpu.backends.atc import (
    CANN_HINT,
    AtcRunner,
    convert,
    find_atc,
    input_format,
    precision_mode,
    stage_inputs,
)
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from hetnpu.devices.spec import NpuSpec

__all__ = ["ACL_DTYPES", "AclError", "AscendBackend", "AscendExecutable", "load_acl"]


def load_acl() -> ModuleType:
    """Import CANN's ``acl`` module, or raise BackendUnavailableError saying what to install."""
    try:
        acl = importlib.import_module("acl")
    except Exception as exc:  # ImportError, or OSError from a CANN library that is not on the path
        raise BackendUnavailableError(
            f"npu: cannot import `acl`, AscendCL's Python module ({type(exc).__name__}: {exc}); "
            f"{CANN_HINT}"
        ) from None
    if not all(hasattr(acl, ns) for ns in ("rt", "mdl", "util")):
        where = getattr(acl, "__file__", "?")
        raise BackendUnavailableError(
            f"npu: the importable `acl` module ({where}) is not CANN's pyacl (it has no "
            f"acl.rt / acl.mdl / acl.util); {CANN_HINT}"
        )
    return acl


class AscendBackend:
    """Huawei Ascend NPUs through AscendCL (``acl``), stages converted to .om by ATC.

    Parameters
    ----------
    acl_module : module, optional
        The ``acl`` module; imported from the CANN toolkit when None.
    atc : AtcRunner, optional
        Runs ATC; the ``atc`` on PATH when None.
    soc_version : str, optional
        ATC's ``--soc_version`` (ascend-facts §4.3), e.g. ``"Ascend910A"``, ``"Ascend310P3"``.
        When None (the default), the chip AscendCL reports (``acl.get_soc_name``); when given,
        it must be that chip, since an .om runs only on the chip it was built for.
    chip : str, path or NpuSpec, optional
        A chip preset (e.g. ``"ascend310p"``) whose ``soc_version`` is expected, checked like
        ``soc_version``; both may be given only if they agree.
    device_id : int, optional
        The device to run on; ``CompileOptions.device_id`` when None.
    execute_async : bool
        ``mdl.execute_async`` on the executable's stream plus ``rt.synchronize_stream``
        (True), or the synchronous ``mdl.execute`` (False).
    """

    name = "npu"

    def __init__(
        self,
        acl_module: Any = None,
        atc: AtcRunner | None = None,
        soc_version: str | None = None,
        device_id: int | None = None,
        execute_async: bool = True,
        chip: str | os.PathLike[str] | NpuSpec | None = None,
    ) -> None:
        self._acl_module = acl_module
        self._atc = atc
        self.soc_version = soc_version
        self.chip = chip
        self.device_id = device_id
        self.execute_async = execute_async

    def _toolchain(self) -> tuple[Any, AtcRunner]:
        acl = self._acl_module if self._acl_module is not None else load_acl()
        missing = missing_util(acl)
        if missing:
            raise BackendUnavailableError(f"npu: {missing}; {CANN_HINT}")
        atc = self._atc if self._atc is not None else find_atc()
        if atc is None:
            raise BackendUnavailableError(
                f"npu: the `atc` model converter is not on PATH; {CANN_HINT}"
            )
        return acl, atc

    def _expected_soc(self) -> tuple[str, str] | None:
        """The SoC the caller expects and where it comes from, or None to take the runtime's."""
        preset = None
        if self.chip is not None:
            from hetnpu.devices.presets import npu_spec  # needed only when a chip is named

            spec = self.chip if hasattr(self.chip, "soc_version") else npu_spec(self.chip)
            preset = (spec.soc_version, f"chip preset {spec.name!r}")
        if self.soc_version is None:
            return preset
        if preset is not None and preset[0] != self.soc_version:
            raise ConfigError(
                f"npu: soc_version {self.soc_version!r} disagrees with the {preset[1]}'s "
                f"soc_version {preset[0]!r}; give one of them"
            )
        return self.soc_version, "soc_version"

    def _soc_version(self, acl: AclCalls, expected: tuple[str, str] | None) -> str:
        """ATC's ``--soc_version``: the chip AscendCL runs on, checked against ``expected``."""
        runtime = acl.soc_name()
        if expected is not None and expected[0] != runtime:
            raise ConfigError(
                f"npu: {expected[1]} is {expected[0]!r} but AscendCL reports the chip as "
                f"{runtime!r} (acl.get_soc_name); ATC's --soc_version must match the chip the "
                f"model runs on, so leave soc_version unset or set it to {runtime!r}"
            )
        return runtime

    def available(self) -> Availability:
        """True when ``acl`` imports with usable host-memory calls and ``atc`` is found;
        otherwise what to install."""
        try:
            self._toolchain()
        except BackendUnavailableError as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        """Convert ``model`` to .om (cached) and load it on the device.

        Raises
        ------
        BackendUnavailableError
            ``acl`` or ``atc`` is missing (the message says what to install), or ATC failed.
        ModelError
            An input has a symbolic dim (ATC needs static shapes) or more than 5 dims.
        ConfigError
            The precision is not one ATC is driven with, or ``soc_version``/``chip`` names
            another chip than the one AscendCL reports.
        AclError
            An AscendCL call failed; everything allocated before it has been released.
        """
        acl_module, atc = self._toolchain()
        # What needs no device is refused before AscendCL is touched.
        precision_mode(options.precision)
        input_format(stage_inputs(model))
        expected = self._expected_soc()
        acl = AclCalls(acl_module)
        acl.ensure_init()
        converted = convert(
            model,
            soc_version=self._soc_version(acl, expected),
            precision=options.precision,
            atc=atc,
            cache_dir=options.cache_dir,
        )
        return AscendExecutable(
            acl_module,
            converted.om_path,
            model,
            device_id=self.device_id if self.device_id is not None else options.device_id,
            execute_async=self.execute_async,
        )
