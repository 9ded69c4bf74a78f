"""Parameters are plain dataclass fields; this builds one from a dict (a TOML table, or CLI
``key=value`` strings), checking names and types against the field annotations."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from codebackdoor.errors import UserError

T = TypeVar("T")


def defaults(obj: Any) -> dict[str, Any]:
    """The parameters of a dataclass instance as plain data (tuples as lists)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _from_string(raw: str, hint: Any) -> Any:
    """A command-line string as the annotated type; ValueError when it is not one."""
    if hint is bool:
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(raw)
    if hint in (int, float):
        return hint(raw)
    if typing.get_origin(hint) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _checked(raw: Any, hint: Any, name: str, what: str, convert_strings: bool) -> Any:
    """``raw`` as the field's type, or a UserError naming the expected type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        if raw is None and len(options) < len(typing.get_args(hint)):
            return None
        hint, origin = options[0], typing.get_origin(options[0])
    if (
        convert_strings
        and isinstance(raw, str)
        and hint is not str
        and origin is not typing.Literal
    ):
        try:
            raw = _from_string(raw, hint)
        except ValueError as exc:
            raise UserError(f"{what}: {name} = {raw!r} must be of type {hint.__name__}") from exc
    if origin is typing.Literal:
        if raw in typing.get_args(hint):
            return raw
        choices = ", ".join(repr(choice) for choice in typing.get_args(hint))
        raise UserError(f"{what}: {name} = {raw!r} is not one of {choices}")
    if origin is tuple and isinstance(raw, (list, tuple)):
        return tuple(raw)
    if origin in (list, dict):
        if not isinstance(raw, origin):
            raise UserError(f"{what}: {name} = {raw!r} must be a {origin.__name__}")
        args = typing.get_args(hint)
        if origin is list and args:
            return [_checked(item, args[0], f"{name}[{i}]", what, convert_strings)
                    for i, item in enumerate(raw)]
        if origin is dict and len(args) == 2 and args[1] is not Any:
            return {key: _checked(value, args[1], f"{name}.{key}", what, convert_strings)
                    for key, value in raw.items()}
        return raw
    # bool is an int to Python, but `beta = true` is never the number a user meant.
    is_number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    if (hint is float and is_number) or (hint is int and is_number and isinstance(raw, int)):
        return hint(raw)
    if hint in (bool, str) and isinstance(raw, hint):
        return raw
    if hint in (float, int, bool, str) or origin is tuple:
        type_name = getattr(hint, "__name__", str(hint))
        raise UserError(f"{what}: {name} = {raw!r} must be of type {type_name}")
    return raw


def build_dataclass(
    cls: type[T], params: dict[str, Any], *, what: str, convert_strings: bool = True
) -> T:
    """Instantiate ``cls`` from ``params``; unknown names list the valid ones. With
    ``convert_strings`` (command-line values) a string is read as the field's type; without it
    (typed TOML presets) a string where a number belongs is an error."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise UserError(
            f"{what} has no parameter {', '.join(repr(u) for u in unknown)}; valid: "
            + (", ".join(fields) or "none")
        )
    values = {
        name: _checked(raw, hints[name], name, what, convert_strings)
        for name, raw in params.items()
    }
    try:
        return cls(**values)
    except TypeError as exc:
        raise UserError(f"{what}: {exc}") from exc
