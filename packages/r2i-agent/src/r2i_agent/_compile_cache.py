"""A disk cache of compiled XLA programs for the ``r2i-agent`` command line.

Every ``r2i-agent train`` or ``eval`` compiles the same programs for the same preset: the model's
initialization, the acting step and the update (~20 s on a 2-core CPU for the ``cpu`` preset). JAX can keep
them on disk, keyed by the program, the JAX/XLA version and the machine, so a resumed run, an evaluation or
another run of the same config loads them instead. The command line turns this on through JAX's own
environment variables, set before JAX is imported:

- ``R2I_COMPILE_CACHE=DIR`` keeps the cache in DIR; ``off`` turns it off. The default is
  ``$XDG_CACHE_HOME/r2i-agent/xla`` (``~/.cache/r2i-agent/xla``), at most ``MAX_BYTES`` (least recently
  used entries go first). With a size limit JAX reads and writes entries under a file lock (``filelock``),
  so runs side by side that compile the same program never read each other's half-written entry.
- A ``JAX_COMPILATION_CACHE_DIR`` already set wins: then JAX's settings are left as they are.

Only the console script does this; ``r2i_agent._cli.main`` called from Python leaves JAX's configuration
alone.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, MutableMapping

ENV_VAR = "R2I_COMPILE_CACHE"
OFF = frozenset({"off", "0", "false", "no", "none"})
MAX_BYTES = 2 * 2**30
# The model's initialization compiles ~60 small programs of 0.1-0.3 s each, as many as the update's ~10 s:
# worth caching too (JAX's default is to cache only compiles of at least 1 s).
MIN_COMPILE_SECONDS = 0.05


def compile_cache_dir(environ: Mapping[str, str]) -> pathlib.Path | None:
    """The folder the command line caches compiled programs in, given the environment ``environ``; None
    when ``R2I_COMPILE_CACHE`` turns it off or ``JAX_COMPILATION_CACHE_DIR`` is set (JAX then uses that)."""
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    chosen = environ.get(ENV_VAR)
    if chosen is not None:
        off = not chosen.strip() or chosen.strip().lower() in OFF
        return None if off else pathlib.Path(chosen).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or pathlib.Path.home(), ".cache")
    return pathlib.Path(base) / "r2i-agent" / "xla"


def use_compile_cache(environ: MutableMapping[str, str]) -> pathlib.Path | None:
    """Point JAX's persistent compilation cache at ``compile_cache_dir(environ)`` through ``environ`` (JAX
    reads it when imported, so call this first). Returns the folder, or None when nothing was set."""
    directory = compile_cache_dir(environ)
    if directory is not None:
        environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
        environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECONDS))
        environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(MAX_BYTES))
    return directory
