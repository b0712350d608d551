"""The one place that sets process-wide variables: the headless OpenGL backend used by MuJoCo rendering."""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path
from typing import Literal

from r2i_envs._deps import MissingDependencyError

RenderBackend = Literal["egl", "osmesa"]

_LIBRARIES: dict[str, tuple[str, str]] = {
    "osmesa": ("OSMesa", "libosmesa6 (Debian/Ubuntu: `apt-get install libosmesa6`)"),
    "egl": ("EGL", "libegl1 and a GPU driver with EGL (Debian/Ubuntu: `apt-get install libegl1`)"),
}


def setup_rendering(backend: RenderBackend | None = None) -> RenderBackend:
    """Select the headless OpenGL backend for MuJoCo and export it as ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM``.

    Call it before anything imports ``dm_control`` or ``mujoco`` rendering (``make`` calls it for the suites
    that render: ``memorymaze``, ``dmc-vision``); spawned worker processes inherit the variables. Choice:
    ``backend`` if given, else an existing ``MUJOCO_GL``, else ``egl`` on a machine with an NVIDIA GPU and
    ``osmesa`` (software rendering, works on any CPU-only machine) otherwise.

    Raises:
        MissingDependencyError: the backend's system library is missing (says which package to install).
        RuntimeError: rendering was already initialised in this process with another backend.
    """
    chosen = backend or os.environ.get("MUJOCO_GL") or _default_backend()
    if chosen not in _LIBRARIES:
        raise ValueError(f"MUJOCO_GL={chosen!r} is not a headless backend; use one of {sorted(_LIBRARIES)}.")
    library, package = _LIBRARIES[chosen]
    if ctypes.util.find_library(library) is None:
        raise MissingDependencyError(
            f"Headless rendering with MUJOCO_GL={chosen} needs the system library lib{library}: "
            f"install {package}."
        )
    in_use = getattr(sys.modules.get("dm_control._render"), "BACKEND", None)
    if in_use is not None and in_use != chosen:
        raise RuntimeError(
            f"dm_control already renders with {in_use} in this process; cannot switch to {chosen}. "
            "Call setup_rendering before making envs, or set MUJOCO_GL before starting Python."
        )
    os.environ["MUJOCO_GL"] = chosen
    os.environ["PYOPENGL_PLATFORM"] = chosen
    return chosen  # type: ignore[return-value]


def _default_backend() -> RenderBackend:
    return "egl" if Path("/proc/driver/nvidia/version").exists() else "osmesa"
