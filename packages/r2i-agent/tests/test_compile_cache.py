"""The command line's disk cache of compiled programs: where it goes, how it is turned off, and that a
second run of the same config loads its update instead of compiling it."""

import os
import pathlib
import subprocess
import sys

import pytest

from r2i_agent._compile_cache import MAX_BYTES, compile_cache_dir, use_compile_cache


def test_default_folder_is_under_the_user_cache():
    assert compile_cache_dir({"HOME": "/home/u"}) == pathlib.Path("/home/u/.cache/r2i-agent/xla")
    assert compile_cache_dir({"HOME": "/home/u", "XDG_CACHE_HOME": "/c"}) == pathlib.Path("/c/r2i-agent/xla")


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", " "])
def test_r2i_compile_cache_off_turns_it_off(value):
    environ = {"HOME": "/home/u", "R2I_COMPILE_CACHE": value}
    assert compile_cache_dir(environ) is None
    assert use_compile_cache(environ) is None
    assert environ == {"HOME": "/home/u", "R2I_COMPILE_CACHE": value}  # nothing set for JAX


def test_r2i_compile_cache_names_the_folder_and_sets_jax_variables():
    environ = {"HOME": "/home/u", "R2I_COMPILE_CACHE": "/data/xla"}
    assert use_compile_cache(environ) == pathlib.Path("/data/xla")
    assert environ["JAX_COMPILATION_CACHE_DIR"] == "/data/xla"
    assert float(environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) < 1.0  # init's small programs too
    assert int(environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) == MAX_BYTES


def test_a_jax_cache_the_user_set_is_left_alone():
    environ = {"HOME": "/home/u", "JAX_COMPILATION_CACHE_DIR": "/mine", "R2I_COMPILE_CACHE": "/other"}
    assert use_compile_cache(environ) is None
    assert environ == {"HOME": "/home/u", "JAX_COMPILATION_CACHE_DIR": "/mine", "R2I_COMPILE_CACHE": "/other"}


TINY_RUN = [
    "train", "--env", "bsuite/memory_len/2", "--preset", "tiny", "--steps", "60", "--no-progress",
    "--train.prefill", "40", "--train.batch_size", "2", "--train.batch_length", "8",
    "--train.train_ratio", "16", "--train.log_every", "20",
]  # fmt: skip


@pytest.mark.slow
def test_a_second_run_loads_the_update_from_the_cache(tmp_path):
    """Two runs of one config through the console entry point (``python -m r2i_agent``): the first
    writes the update to R2I_COMPILE_CACHE, the second reads it (JAX logs the hit)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    environ |= {"R2I_COMPILE_CACHE": str(tmp_path / "xla"), "JAX_LOG_COMPILES": "1"}

    def run(name: str) -> str:
        args = [sys.executable, "-m", "r2i_agent", *TINY_RUN, "--logdir", str(tmp_path / name)]
        done = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stderr

    first = run("first")
    assert "Persistent compilation cache hit for 'jit_update'" not in first
    assert list((tmp_path / "xla").glob("jit_update-*"))
    second = run("second")
    assert "Persistent compilation cache hit for 'jit_update'" in second
