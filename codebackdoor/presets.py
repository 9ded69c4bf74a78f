"""Named attack and defense settings in TOML, one shape for both::

    method = "dece"                 # the registered name
    description = "..."             # what the setting is
    citation = "..."                # the paper
    source = "..."                  # where in the paper or its code the values come from
    [params]                        # the method's parameters (its dataclass fields)
    epsilon = 0.05

An attack preset may also say ``selection`` and a ``[payload]`` table (``method`` and the
payload's parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import read_toml

DESCRIPTIVE_KEYS = ("description", "citation", "source")


def is_preset_path(spec: str) -> bool:
    """Whether an ``--attack``/``--defense`` value names a preset file rather than a registered
    method (method names hold no path separator and no ``.toml``)."""
    return spec.endswith(".toml") or "/" in spec


@dataclass(frozen=True)
class Preset:
    """A preset file's content: the method, its parameters, where they come from, and any
    keys of the preset's kind (``extra``)."""

    path: Path
    method: str
    params: dict[str, Any]
    description: str = ""
    citation: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def read(cls, path: Path, kind: str, extra_keys: tuple[str, ...] = ()) -> Preset:
        """The ``kind`` ("attack", "defense") preset at ``path``, its keys checked."""
        path = Path(path)
        data = read_toml(path, f"{kind} preset")
        valid = ("method", "params", *DESCRIPTIVE_KEYS, *extra_keys)
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise UserError(f"{kind} preset {path}: unknown keys {unknown}; valid keys: "
                            + ", ".join(valid))
        method = data.get("method")
        if not isinstance(method, str) or not method:
            raise UserError(f'{kind} preset {path} needs method = "<{kind} name>"')
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise UserError(f"{kind} preset {path}: [params] must be a table")
        descriptive = {key: data.get(key, "") for key in DESCRIPTIVE_KEYS}
        for key, value in descriptive.items():
            if not isinstance(value, str):
                raise UserError(f"{kind} preset {path}: {key} must be a string")
        extra = {key: data[key] for key in extra_keys if key in data}
        return cls(path, method, dict(params), extra=extra, **descriptive)
