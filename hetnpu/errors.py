"""The exceptions hetnpu raises for problems a user can fix.

Every error names the place it concerns (a node, a tensor, a config key, a file), so that
the CLI can print it as one line. Anything that is not a ``HetnpuError`` escaping from hetnpu
is a bug in hetnpu.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "HetnpuError",
    "InputError",
    "ModelError",
    "NumericOverflowError",
    "NumericOverflowWarning",
    "ScheduleError",
    "UnsupportedOpError",
    "first_line",
]


class HetnpuError(Exception):
    """Base class of every error hetnpu reports to its user."""


class ModelError(HetnpuError):
    """The ONNX model is malformed, cyclic, truncated, or has shapes that cannot be bound."""


class UnsupportedOpError(HetnpuError):
    """No device in the list can run an op (or a device was forced onto one it cannot run)."""


class ConfigError(HetnpuError):
    """A chip, device or sweep configuration value is invalid; the message names the key."""


class ScheduleError(HetnpuError):
    """A schedule or tiling is infeasible, e.g. a tile that does not fit its buffer."""


class BackendUnavailableError(HetnpuError):
    """A backend cannot run here (missing package, driver or device); the message says why."""


class InputError(HetnpuError):
    """Inputs fed to a session do not match the model (name, dtype or shape)."""


class NumericOverflowError(HetnpuError):
    """An NPU op's fp16 result left fp16's range; the message names the first such node."""


class NumericOverflowWarning(UserWarning):
    """As :class:`NumericOverflowError`, issued instead when the session is not strict.

    A warning rather than an error by default, as the chip sets its overflow flag and carries on.
    """


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of ``exc``'s message, for quoting a foreign error inside one of ours;
    ``default`` (or the exception's class name) when the message is empty."""
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if default is None else default
