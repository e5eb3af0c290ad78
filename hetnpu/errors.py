"""The exceptions hetnpu raises for problems a user can fix, and the one for its own faults.

Every error names the place it concerns (a node, a tensor, a config key, a file), so that
the CLI can print it as one line. A :class:`BackendFault` is hetnpu's own failure, reported with
the stage, node and backend it happened in; anything else that is not a ``HetnpuError``
escaping from hetnpu is a bug in hetnpu too.

Messages list at most a few items (:func:`some`) and stay short (:func:`capped`): one line a
user can read, never every element of a tensor or every node of a model.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "MESSAGE_MAX_CHARS",
    "BackendFault",
    "BackendUnavailableError",
    "ConfigError",
    "HetnpuError",
    "InputError",
    "ModelError",
    "NumericOverflowError",
    "NumericOverflowWarning",
    "ScheduleError",
    "UnsupportedOpError",
    "capped",
    "first_line",
    "some",
]

MESSAGE_MAX_CHARS = 600
"""Longest message the CLI prints; longer ones are cut with a note of how much was left out."""


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


class BackendFault(HetnpuError):
    """A backend's own code failed on inputs that passed hetnpu's checks: a bug in hetnpu.

    Never the user's fault, so never an :class:`InputError`: the message names the stage, the
    node and the backend, quotes the underlying error and asks for a report. ``node`` is the
    node that failed when the backend knows it (``None`` otherwise).
    """

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


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


def some(items: Iterable[object], limit: int = 3, *, quote: bool = True) -> str:
    """The first ``limit`` of ``items`` joined by commas, then "and N more" for the rest.

    >>> some(["a", "b", "c", "d", "e"])
    "'a', 'b', 'c' and 2 more"
    """
    shown = list(items)
    head = ", ".join(repr(x) if quote else str(x) for x in shown[:limit])
    return f"{head} and {len(shown) - limit} more" if len(shown) > limit else head


def capped(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """``text`` as one line of at most about ``limit`` characters.

    Line breaks become spaces; a longer text keeps its start (where the place and the first
    problem are named) and says how many characters were left out.
    """
    flat = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit].rstrip()} … ({len(flat) - limit} more characters)"
