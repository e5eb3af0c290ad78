"""Fault injection on the AscendCL path.

Each call of the documented sequence (ascend-facts §4.1) fails once in turn, with one code of
every return-code family of §4.2: 1xxxxx, 2xxxxx, 3xxxxx, 5xxxxx and the runtime's 107xxx and
207xxx; calls that return no code (constructors, getters) return a null or a wrong value
instead. Each time the backend must raise an AclError naming the call and the code, release
everything created before the failure (the stand-in's ``leaks()`` is empty and it refused no
call) and reset the device if it was set. AscendCL stays initialised (it is finalised once, at
exit), and that exit-time finalize must then succeed, which the stand-in allows only when
nothing is alive. ``benchmarks/acl_faults.py`` prints the resulting table.
"""

from __future__ import annotations

import onnx
import pytest

from hetnpu.backends import acl_errors
from hetnpu.backends.acl_errors import ACL_ERRORS, AclError
from hetnpu.backends.ascend import AscendBackend
from hetnpu.backends.base import CompileOptions
from tests.backends.fake_acl import KINDS, VALUE, FakeAcl, FakeAtc, documented_sequence
from tests.backends.test_ascend import two_io_feeds, two_io_model

CODES = (100000, 200000, 300000, 500001, 107002, 207001)
"""One code per family of §4.2: INVALID_PARAM, BAD_ALLOC, STORAGE_OVER_LIMIT, FAILURE,
RT_CONTEXT_NULL, RT_MEMORY_ALLOCATION."""


def _numbered(names: list[str]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append((name, seen[name]))
    return out


LEGACY_CALLS = frozenset({"util.numpy_to_ptr", "util.ptr_to_numpy"})
"""Calls made only with older pyacl, which lacks bytes_to_ptr / ptr_to_bytes."""


def stand_in_for(name: str) -> FakeAcl:
    """A stand-in on which the backend makes call ``name``: older pyacl for its util calls."""
    return FakeAcl(legacy_util=name in LEGACY_CALLS)


def load_run_cases() -> list[tuple[str, int, int | None, bool]]:
    """(call, nth, code, execute_async) for every call of load + run, every code family."""
    load, run, _ = documented_sequence(2, 2, execute_async=True)
    calls = [(name, nth, True) for name, nth in _numbered(load + run)]
    calls.append(("mdl.execute", 1, False))  # the synchronous variant's only different call
    _, legacy_run, _ = documented_sequence(2, 2, legacy_util=True)
    calls += [(name, nth, True) for name, nth in _numbered(legacy_run) if name in LEGACY_CALLS]
    return [
        (name, nth, code, sync)
        for name, nth, sync in calls
        for code in ((None,) if KINDS[name] == VALUE else CODES)
    ]


def release_cases() -> list[tuple[str, int, int]]:
    _, _, release = documented_sequence(2, 2)
    return [(name, nth, code) for name, nth in _numbered(release) for code in CODES]


@pytest.fixture(scope="module")
def stage(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[onnx.ModelProto, FakeAtc, CompileOptions]:
    opts = CompileOptions(cache_dir=str(tmp_path_factory.mktemp("om")))
    return two_io_model(), FakeAtc(), opts


def inject(stage, name: str, nth: int, code: int | None, execute_async: bool = True):
    """Fail ``name`` (its ``nth`` call) with ``code`` during load + run; the error and stand-in."""
    model, atc, opts = stage
    fake = stand_in_for(name)
    fake.fail_on(name, code, nth)
    backend = AscendBackend(acl_module=fake, atc=atc, execute_async=execute_async)
    with pytest.raises(AclError) as err:
        exe = backend.compile(model, opts)
        exe.run(two_io_feeds())
    return err.value, fake


@pytest.mark.parametrize(
    "name, nth, code, execute_async",
    load_run_cases(),
    ids=[f"{n}#{i}-{c or 'null'}{'' if a else '-sync'}" for n, i, c, a in load_run_cases()],
)
def test_each_call_failing_releases_everything(stage, name, nth, code, execute_async):
    err, fake = inject(stage, name, nth, code, execute_async)
    assert (err.call, err.code) == (f"acl.{name}", code)
    assert str(err).startswith(f"acl.{name} failed: ")
    if code is not None:
        assert f"{code} {ACL_ERRORS[code]}" in str(err)
    assert fake.leaks() == []
    assert fake.violations == [], "cleaning up must not misuse the API"
    at = next(i for i, c in enumerate(fake.calls) if c.injected)
    before, after = fake.names()[:at], fake.names()[at + 1 :]
    assert ("rt.reset_device" in after) == ("rt.set_device" in before)
    if "rt.set_device" in before:
        assert after[-1] == "rt.reset_device"
    assert "finalize" not in after, "AscendCL stays initialised until the process exits"
    # At exit hetnpu finalises what it initialised; the stand-in allows it only if all is free.
    assert acl_errors.finalize_owned(fake) is (name != "init")
    assert not fake.initialised and fake.violations == []


@pytest.mark.parametrize(
    "name, nth, code", release_cases(), ids=[f"{n}#{i}-{c}" for n, i, c in release_cases()]
)
def test_a_failing_release_call_does_not_stop_the_others(stage, name, nth, code):
    model, atc, opts = stage
    fake = FakeAcl()
    exe = AscendBackend(acl_module=fake, atc=atc).compile(model, opts)
    exe.run(two_io_feeds())
    start = len(fake.calls)
    fake.fail_on(name, code, nth)
    with pytest.raises(AclError) as err:
        exe.close()
    assert (err.value.call, err.value.code) == (f"acl.{name}", code)
    _, _, release = documented_sequence(2, 2)
    assert fake.names()[start:] == release, "every release is still attempted, once"
    exe.close()  # nothing is retried: a failed free is not freed twice
    assert len(fake.calls) == start + len(release)
    assert fake.initialised, "a failed release does not finalize AscendCL for the process"


def test_the_fault_table_covers_every_call_and_code_family():
    cases = load_run_cases()
    load, run, _ = documented_sequence(2, 2)
    assert {name for name, *_ in cases} == set(load + run) | {"mdl.execute"} | LEGACY_CALLS
    families = {
        c // 100_000 if c // 1000 not in (107, 207) else c // 1000 for *_, c, _ in cases if c
    }
    assert families == {1, 2, 3, 5, 107, 207}
    assert len(cases) > 150
