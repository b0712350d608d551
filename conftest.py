"""Session-wide test setup: a persistent XLA compilation cache per test process tree.

Many tests run ``r2i-agent`` in fresh processes (as users run it), and each would compile the same small
update again; a cache shared through the environment lets every process after the first load it instead.
Test processes also keep freed memory for XLA's next call, as the ``r2i-agent`` command does
(``r2i_agent._allocator``; R2I_MALLOC_TUNING=off turns it off): updates run ~1.1-1.5× faster on CPU.

The cache lives in a temporary folder removed at exit, so no run reads another session's entries. Under
pytest-xdist (``make test`` runs two workers) each worker gets its own subfolder: JAX writes cache entries
without a lock, so two workers compiling the same program could otherwise read each other's half-written file.
"""

import atexit
import os
import shutil
import tempfile

import pytest

from r2i_agent._allocator import keep_freed_memory

_BASE = "R2I_TESTS_XLA_CACHE_BASE"

if _BASE not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ[_BASE] = tempfile.mkdtemp(prefix="r2i-tests-xla-cache-")
    atexit.register(shutil.rmtree, os.environ[_BASE], ignore_errors=True)
if _BASE in os.environ:  # this session made the cache: one subfolder per process tree
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(os.environ[_BASE], worker)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the tests' small programs compile fast

keep_freed_memory(os.environ)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop each test module's compiled XLA programs when it ends. A test worker runs hundreds of modules;
    holding every executable (and its mapped machine code) for the whole session grew each worker until
    one aborted inside an XLA compile. Later modules that need a program again load it from the cache."""
    yield
    import jax

    jax.clear_caches()
