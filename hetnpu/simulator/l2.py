"""Which tensors the chip's shared L2 holds between ops: a least-recently-used set of whole
tensors, with the write-backs to HBM that evicting a written one costs.

An op's inputs found here are read at the L2 rate instead of HBM's (the driver zeroes their
HBM bytes); its outputs are written here and stay dirty until evicted, when their bytes are
charged to HBM. At the end of a run the dirty graph outputs are written back too.

In an L2 buffer (``l2_kind="buffer"``, the 310's: GE's platform ini ``l2_type=1``) GE gives
tensors L2 pages and frees a tensor's pages once its consumers have run, never loading it out
to DDR: the driver frees (:meth:`~L2Residency.free`) each entry after the last op that reads
it under any of its names (:class:`Lifetimes`), so only live tensors are evicted and written
back.

Left out: partial residency (a tensor larger than L2 never enters it, one that fits enters
whole), cache-line granularity, set associativity and the cache's own replacement policy (LRU
over tensors stands in for it), prefetching; in a cache, GE's memory reuse (ATC
``--disable_reuse_memory=0``), which lets a later tensor overwrite a dead one's dirty lines
instead of forcing them out (tried: freeing dead tensors from the 310P3's cache as from the
310's buffer takes its rows from 10.8% to 13.3% MAPE with both overheads refit, so a cache
writes back every evicted dirty tensor). Nor does the compiler clean a cache: FE issues cache
maintenance tasks (prefetch, invalidate, write-back: hicann/ge ffdcbc9f
``compiler/engines/nn_engine/optimizer/cmo/``) only when the platform ini sets
``l2_cache_mode=cmo`` (``PlatformUtils::IsEnableL2CacheCmo``), which among GE's platform
configs only the 310B1's does; the 310P3's sets no mode. In an L2 buffer: GE's allocation of
whole pages, its limit of 8 tensors resident at once, and its placement in DDR of an output
that finds no free page, where the simulator evicts (and writes back) the least recently used
live tensor instead: either way one tensor's bytes go through DDR.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable

__all__ = ["L2Residency", "Lifetimes"]


class L2Residency:
    """The tensors in an L2 of ``capacity_bytes``, most recently used last."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._lru: OrderedDict[str, tuple[int, bool]] = OrderedDict()
        self._used = 0
        self.writeback_bytes = 0
        """Bytes written back to HBM by evictions (and by :meth:`flush`)."""

    def __contains__(self, name: object) -> bool:
        return name in self._lru

    def touch(self, name: str, nbytes: int, *, dirty: bool) -> None:
        """Tensor ``name`` was read (``dirty=False``) or written: it becomes most recent."""
        if nbytes > self.capacity_bytes:
            return
        old = self._lru.pop(name, None)
        if old is not None:
            self._used -= old[0]
            dirty = dirty or old[1]
        self._lru[name] = (nbytes, dirty)
        self._used += nbytes
        while self._used > self.capacity_bytes:
            _, (size, was_dirty) = self._lru.popitem(last=False)
            self._used -= size
            if was_dirty:
                self.writeback_bytes += size

    def merge(self, parts: Iterable[str], whole: str) -> bool:
        """``parts`` are slices of ``whole``'s memory (a no-task Concat's inputs): if all are
        resident, they become one entry ``whole``, dirty if any part was, most recent, and
        True is returned; else the parts stay as they are and ``whole`` is not resident."""
        names = list(parts)
        if not names or any(n not in self._lru for n in names):
            return False
        size, dirty = 0, False
        for n in names:
            b, d = self._lru.pop(n)
            size, dirty = size + b, dirty or d
        self._lru[whole] = (size, dirty)
        return True

    def free(self, names: Iterable[str]) -> None:
        """``names`` are dead and leave L2 without a write-back: an L2 buffer
        (``l2_kind="buffer"``) releases their pages (see the module docstring)."""
        for name in names:
            old = self._lru.pop(name, None)
            if old is not None:
                self._used -= old[0]

    def flush(self, names: Iterable[str]) -> None:
        """Write back those of ``names`` that are resident and dirty (the run's outputs)."""
        wanted = set(names)
        for name, (size, dirty) in self._lru.items():
            if dirty and name in wanted:
                self.writeback_bytes += size


class Lifetimes:
    """When each entry of an L2 buffer dies: after the last op, in run order, that reads it
    under any of its names.

    ``reads`` are (run-order index, entry) pairs in run order; ``keep`` are the entries that
    never die (the graph's outputs, written back at the end)."""

    def __init__(self, reads: Iterable[tuple[int, str]], keep: Iterable[str]) -> None:
        self._last: dict[str, int] = {}
        for index, entry in reads:
            self._last[entry] = index
        self._keep = set(keep)
        self._dying: dict[int, set[str]] = defaultdict(set)
        for entry, index in self._last.items():
            self._dying[index].add(entry)

    def merge(self, parts: Iterable[str], whole: str) -> None:
        """``parts`` became one entry ``whole`` (a no-task Concat's inputs, its output's
        slices): it lives as long as the longest-lived of them."""
        ends = []
        for entry in (*parts, whole):
            index = self._last.pop(entry, None)
            if index is not None:
                self._dying[index].discard(entry)
                ends.append(index)
            if entry in self._keep:
                self._keep.add(whole)
        if ends:
            self._last[whole] = max(ends)
            self._dying[max(ends)].add(whole)

    def dead_after(self, index: int) -> list[str]:
        """The entries whose last reader is op ``index``."""
        return sorted(self._dying.pop(index, set()) - self._keep)
