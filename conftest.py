"""Session-wide test setup: one persistent XLA compilation cache for every test process.

Many tests run ``r2i-agent`` in fresh processes (as users run it), and each would compile the same small
update again; a cache shared through the environment lets every process after the first load it instead.
The cache lives in a temporary folder removed at exit, so no run reads another session's entries.
"""

import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="r2i-tests-xla-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the tests' small programs compile fast
