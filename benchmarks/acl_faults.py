"""Fault-injection table of the AscendCL path, against the recording stand-in.

Run from the repository root: ``python -m benchmarks.acl_faults``

A two-input, two-output stage is loaded and run by ``hetnpu.backends.ascend`` on the stand-in
of ``acl`` (``tests/backends/fake_acl.py``) while one call of the documented sequence
(ascend-facts §4.1) fails once, with one code of each §4.2 family (or a null / wrong value for
calls that return none); the util calls of older pyacl (numpy_to_ptr / ptr_to_numpy) fail on a
stand-in of that pyacl. For each call the table gives the codes tried, whether every one gave
an AclError naming the call and the code with nothing left behind, what the backend then
released (as the stand-in saw it) and what leaked. AscendCL stays initialised after a failure;
the process's exit hook finalises it, which each case then runs: the stand-in lets that
finalize succeed only when nothing is alive. A second table makes each release call of
``close()`` fail instead.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict

from hetnpu.backends.acl_errors import ACL_ERRORS, AclError, finalize_owned
from hetnpu.backends.ascend import AscendBackend
from hetnpu.backends.base import CompileOptions
from tests.backends.fake_acl import FakeAcl, FakeAtc, documented_sequence, released
from tests.backends.test_ascend import two_io_feeds, two_io_model
from tests.backends.test_ascend_faults import load_run_cases, release_cases, stand_in_for


def _names_it(err: AclError | None, name: str, code: int | None) -> bool:
    if err is None or (err.call, err.code) != (f"acl.{name}", code):
        return False
    return code is None or f"{code} {ACL_ERRORS[code]}" in str(err)


def load_run_table(opts: CompileOptions, atc: FakeAtc) -> tuple[list[str], int, int]:
    rows: dict[tuple[str, int, bool], list[tuple[int | None, bool, str, str]]] = defaultdict(list)
    for name, nth, code, execute_async in load_run_cases():
        fake = stand_in_for(name)
        fake.fail_on(name, code, nth)
        err = None
        try:
            exe = AscendBackend(acl_module=fake, atc=atc, execute_async=execute_async).compile(
                two_io_model(), opts
            )
            exe.run(two_io_feeds())
        except AclError as exc:
            err = exc
        at = next(i for i, c in enumerate(fake.calls) if c.injected)
        freed_at_failure = not fake.leaks() and "finalize" not in fake.names()
        try:
            exited = finalize_owned(fake) is (name != "init")  # what the exit hook does
        except AclError:
            exited = False
        ok = _names_it(err, name, code) and freed_at_failure and exited and not fake.violations
        leaks = "; ".join(fake.leaks() + fake.violations) or "none"
        rows[name, nth, execute_async].append((code, ok, released(fake.calls[at + 1 :]), leaks))
    lines = [
        "| failing call (n-th) | codes injected | AclError names call+code, no leak, "
        "exit finalize ok | released after the failure (+ at exit) | leaked |",
        "|---|---|---|---|---|",
    ]
    passed = 0
    for (name, nth, execute_async), outcomes in rows.items():
        codes = " ".join(str(c) if c is not None else "null/0" for c, *_ in outcomes)
        good = sum(ok for _, ok, _, _ in outcomes)
        passed += good
        freed = sorted({f for _, _, f, _ in outcomes})
        leaked = sorted({lk for *_, lk in outcomes})
        label = f"acl.{name} ({nth}){'' if execute_async else ' [sync execute]'}"
        lines.append(
            f"| {label} | {codes} | {good}/{len(outcomes)} | {' / '.join(freed)} | "
            f"{' / '.join(leaked)} |"
        )
    return lines, passed, sum(len(v) for v in rows.values())


def release_table(opts: CompileOptions, atc: FakeAtc) -> list[str]:
    _, _, release = documented_sequence(2, 2)
    rows: dict[tuple[str, int], list[tuple[bool, str]]] = defaultdict(list)
    for name, nth, code in release_cases():
        fake = FakeAcl()
        exe = AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
        exe.run(two_io_feeds())
        start = len(fake.calls)
        fake.fail_on(name, code, nth)
        err = None
        try:
            exe.close()
        except AclError as exc:
            err = exc
        ok = _names_it(err, name, code) and fake.names()[start:] == release
        rows[name, nth].append((ok, "; ".join(fake.leaks()) or "none"))
    lines = [
        "| failing release call (n-th) | codes | AclError + every other release attempted | "
        "left behind (stand-in's leaks) |",
        "|---|---|---|---|",
    ]
    for (name, nth), outcomes in rows.items():
        good = sum(ok for ok, _ in outcomes)
        leaked = " / ".join(sorted({lk for _, lk in outcomes}))
        lines.append(f"| acl.{name} ({nth}) | 6 families | {good}/{len(outcomes)} | {leaked} |")
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        opts, atc = CompileOptions(cache_dir=cache), FakeAtc()
        lines, passed, total = load_run_table(opts, atc)
        print("\n".join(lines))
        print(f"\n{passed}/{total} injected faults during load + run handled cleanly.\n")
        print("\n".join(release_table(opts, atc)))


if __name__ == "__main__":
    main()
