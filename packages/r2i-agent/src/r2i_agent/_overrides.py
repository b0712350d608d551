"""Dotted overrides (``model.ssm.layers=2``) of a nested frozen dataclass config, typed from its annotations.

Everything is derived from ``dataclasses.fields`` and ``typing.get_type_hints``, so a field added to any
config class is overridable (and listed in ``--help``) without touching this module.

>>> from r2i_agent._config import agent_preset
>>> config = apply_overrides(agent_preset("tiny"), {"model.ssm.layers": "1", "train.batch_size": "2"})
>>> config.model.ssm.layers, config.train.batch_size
(1, 2)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ConfigError(ValueError):
    """A config override or config file names an unknown field or gives it a value it cannot take."""


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One overridable (leaf) field: its dotted path, its annotated type and its value in a config."""

    path: str
    type: Any
    value: Any


def leaf_fields(config: Any, prefix: str = "") -> list[FieldInfo]:
    """Every non-dataclass field of ``config`` and of its nested dataclasses, depth first, in field order."""
    hints = typing.get_type_hints(type(config))
    leaves = []
    for field in dataclasses.fields(config):
        if not field.init:
            continue
        path, value = prefix + field.name, getattr(config, field.name)
        if _is_dataclass_type(hints[field.name]):
            leaves += leaf_fields(value, path + ".")
        else:
            leaves.append(FieldInfo(path, hints[field.name], value))
    return leaves


def type_name(tp: Any) -> str:
    """A short human name of an annotated type: ``int``, ``float``, ``{s3m,rssm}``, ``int | None``."""
    if typing.get_origin(tp) is Literal:
        return "{" + ",".join(str(choice) for choice in typing.get_args(tp)) + "}"
    if _union_args(tp) is not None:
        return " | ".join("None" if arg is type(None) else type_name(arg) for arg in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return f"tuple[{', '.join(type_name(arg) for arg in typing.get_args(tp))}]"
    return getattr(tp, "__name__", str(tp))


def show_value(value: Any) -> str:
    """How a value is written on the command line (and in help and diffs): ``3``, ``0.001``, ``s3m``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(show_value(item) for item in value)
    return "None" if value is None else str(value)


def parse_value(path: str, tp: Any, text: str) -> Any:
    """Parse command-line ``text`` into a value of type ``tp`` for field ``path``; ConfigError if it can't.

    ints also accept integral float notation (``1e5``), floats must be finite, bools
    ``true/false/1/0/yes/no/on/off``, Literals one of their choices, ``X | None`` also ``none``, and
    ``tuple[X, ...]`` comma-separated items.
    """
    try:
        if not text.isprintable():  # int()/float() would silently drop control characters
            raise ValueError("contains a non-printable character")
        return _parse(tp, text.strip())
    except (ValueError, TypeError) as err:
        reason = f" ({err})" if str(err) else ""
        raise ConfigError(f"--{path} expects {type_name(tp)}, got {text!r}{reason}") from None


def coerce_value(path: str, tp: Any, value: Any) -> Any:
    """Check JSON-decoded ``value`` against type ``tp`` (lists become tuples); ConfigError names ``path``."""
    try:
        return _coerce(tp, value)
    except (ValueError, TypeError):
        raise ConfigError(f"{path} should be {type_name(tp)}, got {value!r}") from None


def resolve_path(config: Any, path: str) -> FieldInfo:
    """The leaf field at dotted ``path``; ConfigError naming the closest valid paths if there is none."""
    leaves = {leaf.path: leaf for leaf in leaf_fields(config)}
    if path in leaves:
        return leaves[path]
    raise ConfigError(unknown_field_message(path, list(leaves)))


def unknown_field_message(path: str, paths: list[str]) -> str:
    """Why ``--path`` is no option: a group of fields, or unknown (with the closest of ``paths``)."""
    inside = [p for p in paths if p.startswith(path + ".")]
    if inside:
        return f"--{path} is a group of fields; set one of them, e.g. --{inside[0]}"
    close = suggest(path, paths)
    hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
    return f"unknown option --{path}{hint} (`r2i-agent train --help` lists every option)"


def suggest(name: str, paths: list[str]) -> list[str]:
    """Up to three valid paths close to ``name``: whole-path matches first, then same last component."""
    close = difflib.get_close_matches(name, paths, n=3, cutoff=0.6)
    last = name.rpartition(".")[2]
    close += [p for p in paths if p.rpartition(".")[2] == last and p not in close]
    return close[:3]


def apply_overrides(config: Any, overrides: Mapping[str, str]) -> Any:
    """``config`` with each dotted path in ``overrides`` set to its parsed text value.

    All overrides are applied together and the config rebuilt bottom-up with ``dataclasses.replace``, so each
    class's ``__post_init__`` validation sees the final values (``model.sequence_model=rssm`` together with
    ``model.policy_input=output`` is fine even though either alone may not be); its ValueError becomes a
    ConfigError.
    """
    changes: dict[str, Any] = {}
    for path, text in overrides.items():
        leaf = resolve_path(config, path)
        _set_nested(changes, path.split("."), parse_value(path, leaf.type, text))
    given = " ".join(f"--{path} {text}" for path, text in overrides.items())
    return rebuild(config, changes, context=f" (with {given})")


def rebuild(config: Any, changes: Mapping[str, Any], *, context: str = "") -> Any:
    """``config`` with nested ``changes`` (``{"model": {"ssm": {"layers": 2}}}``) applied and validated.

    ``context`` is appended to the message of a validation error (e.g. which options were given).
    """
    if not changes:
        return config
    try:
        return _replace(config, changes)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid config: {err}{context}") from None


def _replace(config: Any, changes: Mapping[str, Any]) -> Any:
    kwargs = {
        name: _replace(getattr(config, name), change) if isinstance(change, dict) else change
        for name, change in changes.items()
    }
    return dataclasses.replace(config, **kwargs)


def _set_nested(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _parse(tp: Any, text: str) -> Any:
    if typing.get_origin(tp) is Literal:
        by_text = {show_value(choice): choice for choice in typing.get_args(tp)}
        if text not in by_text:
            raise ValueError(f"choose one of {', '.join(by_text)}")
        return by_text[text]
    if (args := _union_args(tp)) is not None:
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _parse(arg, text)
                except (ValueError, TypeError):
                    continue
        raise ValueError("")
    if typing.get_origin(tp) is tuple:
        items = [item.strip() for item in text.split(",")] if text else []
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse(args[0], item) for item in items)
        if len(items) != len(args):
            raise ValueError(f"{len(args)} comma-separated items")
        return tuple(_parse(arg, item) for arg, item in zip(args, items, strict=True))
    if tp is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError("true/false, 1/0, yes/no or on/off")
        return text.lower() in _TRUE
    if tp is int:
        return _parse_int(text)
    if tp is float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if tp is str:
        return text
    raise TypeError(f"fields of type {type_name(tp)} cannot be set from the command line")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # ValueError for non-numbers
    if not (math.isfinite(number) and number.is_integer()):
        raise ValueError("not a whole number")
    return int(number)


def _coerce(tp: Any, value: Any) -> Any:
    if typing.get_origin(tp) is Literal:
        if not any(type(value) is type(choice) and value == choice for choice in typing.get_args(tp)):
            raise ValueError(value)
        return value
    if (args := _union_args(tp)) is not None:
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _coerce(arg, value)
                except (ValueError, TypeError):
                    continue
        raise ValueError(value)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(value)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item) for item in value)
        return tuple(_coerce(arg, item) for arg, item in zip(args, value, strict=True))
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, bool, str) and type(value) is tp:
        return value
    raise TypeError(value)
