"""Lazy imports of optional suite dependencies with an install hint when they are missing."""

from __future__ import annotations

import importlib
import types


class MissingDependencyError(ImportError):
    """An optional suite dependency (or a system library it needs) is not installed."""


def require(module: str, extra: str) -> types.ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"`{module}` is needed for the {extra} suite but could not be imported ({err}). Install it with "
            f"`pip install 'r2i-envs[{extra}]'` (in this repository: `uv sync --all-packages`)."
        ) from err
