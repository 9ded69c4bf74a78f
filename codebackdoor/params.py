"""Parameters are plain dataclass fields; this builds one from a dict (a TOML table or CLI
``key=value`` strings), checking names and converting strings to the field's type."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from codebackdoor.errors import UserError

T = TypeVar("T")


def parameter_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def defaults(obj: Any) -> dict[str, Any]:
    """The parameters of a dataclass instance as plain data (tuples as lists)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = {"method": getattr(value, "name", type(value).__name__), **defaults(value)}
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _convert(raw: Any, default: Any, name: str, what: str) -> Any:
    if not isinstance(raw, str) or isinstance(default, str) or default is None:
        if isinstance(default, tuple) and isinstance(raw, list):
            return tuple(raw)
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise UserError(
            f"{what}: parameter '{name}' expects {type(default).__name__}, got '{raw}'"
        ) from exc
    return raw


def build_dataclass(cls: type[T], params: dict[str, Any], *, what: str) -> T:
    """Instantiate ``cls`` from ``params``; unknown names list the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise UserError(
            f"{what} has no parameter {', '.join(repr(u) for u in unknown)}; its parameters: "
            + (", ".join(fields) or "none")
        )
    values = {}
    for name, raw in params.items():
        f = fields[name]
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        values[name] = _convert(raw, default, name, what)
    try:
        return cls(**values)
    except TypeError as exc:
        raise UserError(f"{what}: {exc}") from exc
