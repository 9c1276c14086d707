"""Validation of the typed config: one-line errors that name the field.

The config dataclasses (:mod:`boresnet.config.schema`, :mod:`boresnet.config.search`)
call these in ``__post_init__``. The tuner's settings are checked by the tuner itself
(:class:`boresnet.tuner.TunerSettings`), the config naming the field.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


def require(condition: bool, name: str, message: str) -> None:
    """Raise :class:`ConfigError` ``"{name}: {message}"`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{name}: {message}")


def check_fields(section: object, prefix: str) -> None:
    """Every field of a config dataclass holds a value of its annotated type.

    jsonargparse checks types on the command line; this checks a config built any other
    way (a resumed ``config.yaml``, :func:`from_dict`), so that a typo is one line
    naming the field, never a ``TypeError`` from a comparison or a trial that fails.
    """
    for name, hint in get_type_hints(type(section)).items():
        value = getattr(section, name)
        if not _matches(value, hint):
            allowed = get_args(hint) if get_origin(hint) is Literal else None
            expected = f"one of {', '.join(map(str, allowed))}" if allowed else _describe(hint)
            where = f"{prefix}.{name}" if prefix else name
            raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, option) for option in get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # an integer is a float too (lr: 1)
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(option) for option in get_args(hint))
    if get_origin(hint) is list:
        return f"a list of {_describe(get_args(hint)[0])}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
