"""The command line's malloc settings: which calls it makes, when it makes none, and that they work."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from r2i_agent import _allocator, _cli
from r2i_agent._allocator import M_ARENA_MAX, M_MMAP_MAX, M_TRIM_THRESHOLD, keep_freed_memory


class RecordingMallopt:
    def __init__(self, result: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


def test_sets_no_mmap_no_trimming_and_one_arena():
    mallopt = RecordingMallopt()
    assert keep_freed_memory({}, mallopt) is True
    assert mallopt.calls == [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1), (M_ARENA_MAX, 1)]
    assert (M_MMAP_MAX, M_TRIM_THRESHOLD, M_ARENA_MAX) == (-4, -1, -8)  # glibc's <malloc.h>


def test_reports_a_setting_glibc_refused():
    mallopt = RecordingMallopt(result=0)
    assert keep_freed_memory({}, mallopt) is False
    assert len(mallopt.calls) == 3  # all were tried


@pytest.mark.parametrize("value", ["off", "OFF", " 0 ", "false", "no", "none", ""])
def test_switched_off_by_the_environment(value):
    mallopt = RecordingMallopt()
    assert keep_freed_memory({"R2I_MALLOC_TUNING": value}, mallopt) is False
    assert mallopt.calls == []


def test_does_nothing_without_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert _allocator.glibc_mallopt() is None
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert keep_freed_memory({}) is False


def test_console_script_applies_it_before_running(monkeypatch):
    order = []
    monkeypatch.setattr(_cli, "use_compile_cache", lambda environ: order.append("cache"))
    monkeypatch.setattr(_cli, "keep_freed_memory", lambda environ: order.append(("malloc", environ)))
    monkeypatch.setattr(_cli, "main", lambda: order.append("main") or 0)
    assert _cli.run() == 0
    assert order == ["cache", ("malloc", os.environ), "main"]


_FAULTS_PER_ALLOCATION = textwrap.dedent(
    """
    import os, resource, sys, threading
    import numpy as np
    from r2i_agent._allocator import keep_freed_memory

    if sys.argv[1] == "kept":
        assert keep_freed_memory(os.environ)

    def use_a_block():
        block = np.ones(2**24, np.float32)  # 64 MiB: above glibc's largest mmap threshold
        block += 1
        del block

    counts = []
    for round in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if round % 2:  # as XLA does when a call's inputs are not ready: on another thread
            thread = threading.Thread(target=use_a_block)
            thread.start()
            thread.join()
        else:
            use_a_block()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(" ".join(map(str, counts)))
    """
)


@pytest.mark.skipif(_allocator.glibc_mallopt() is None, reason="the settings are glibc's (Linux)")
def test_a_freed_block_is_reused_without_page_faults():
    """Allocating, touching and freeing 64 MiB again and again, on the main thread and on new threads: by
    default every round faults its pages in anew (the block is mmapped and unmapped); with the settings only
    the first round does."""

    def faults(mode: str) -> list[int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env.pop("GLIBC_TUNABLES", None)
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS_PER_ALLOCATION, mode],
            capture_output=True, text=True, env=env, check=True, timeout=120,
        )  # fmt: skip
        return [int(n) for n in out.stdout.split()]

    default, kept = faults("default"), faults("kept")
    # A fault maps a 4 KiB page, or 2 MiB where numpy asks for transparent huge pages: at least 32 a round.
    assert min(default[1:]) >= 32, default  # every round faults its block in anew
    assert kept[0] >= 32, kept  # the first round still faults the heap in
    assert max(kept[1:]) <= 10, (default, kept)  # a new thread's stack: a few faults
