"""Keep memory the update frees for the next update (glibc malloc settings, Linux).

XLA on CPU allocates each compiled program's temporary buffers anew at every call and frees them after it.
glibc's malloc serves large blocks (above a threshold that adapts up to 32 MiB) from fresh ``mmap`` pages
that ``free`` returns to the kernel, and trims the heap's free top too, so every update pays a page fault and
the zeroing of a page for each 4 KiB it touches: a third of a ``cpu``-preset training run's time on a 2-core
CPU (docs/benchmarks.md). Three ``mallopt`` settings keep that memory in the process instead: no ``mmap`` for
large blocks (``M_MMAP_MAX = 0``), no trimming of the heap's top (``M_TRIM_THRESHOLD = -1``) and one heap for
all threads (``M_ARENA_MAX = 1``: a thread's own heap maps blocks over 64 MiB anew and drops emptied parts;
in the training loop XLA seems to run many calls on its own threads; without this setting most runs still
faulted as before). The process then holds on to its peak memory until it exits, which a training run
reaches anyway. Set them before JAX starts its threads.

The ``r2i-agent`` command line applies them at start; ``R2I_MALLOC_TUNING=off`` leaves malloc alone. Other
programs get the same from the environment: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
MALLOC_ARENA_MAX=1``.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable, Mapping

from r2i_agent._compile_cache import OFF

ENV_VAR = "R2I_MALLOC_TUNING"
# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1), (M_ARENA_MAX, 1))

Mallopt = Callable[[int, int], int]


def glibc_mallopt() -> Mallopt | None:
    """glibc's ``mallopt`` (``int mallopt(int param, int value)``), or None on another C library or OS."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function


def keep_freed_memory(environ: Mapping[str, str], mallopt: Mallopt | None = None) -> bool:
    """Set glibc's malloc to keep freed memory in the process (see the module doc), unless ``environ``'s
    ``R2I_MALLOC_TUNING`` is off or the C library is not glibc. Returns whether all settings took effect.
    ``mallopt`` (default: glibc's) is for tests."""
    chosen = environ.get(ENV_VAR)
    if chosen is not None and (not chosen.strip() or chosen.strip().lower() in OFF):
        return False
    mallopt = glibc_mallopt() if mallopt is None else mallopt
    if mallopt is None:
        return False
    return all([mallopt(param, value) == 1 for param, value in SETTINGS])
