"""Resolve ``--attack NAME|PRESET.toml`` plus overrides into an Attack for a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codebackdoor.attacks.base import Attack, Trigger
from codebackdoor.attacks.payloads import make_payload
from codebackdoor.errors import UserError
from codebackdoor.io import read_toml
from codebackdoor.params import build_dataclass
from codebackdoor.registry import registry

PRESET_KEYS = {"method", "params", "payload", "selection", "description", "citation", "source"}


def read_preset(path: Path) -> dict[str, Any]:
    """A named attack configuration (TOML): method, params, payload, selection, citation."""
    preset = read_toml(path, "attack preset")
    unknown = sorted(set(preset) - PRESET_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown keys {unknown}; valid keys: {sorted(PRESET_KEYS)}")
    if "method" not in preset:
        raise UserError(f"{path}: an attack preset needs 'method' (an attack name)")
    return preset


def is_preset_path(spec: str) -> bool:
    return spec.endswith(".toml") or "/" in spec


def build_attack(
    spec: str,
    task: Any,
    *,
    params: dict[str, Any] | None = None,
    payload: str | None = None,
    payload_params: dict[str, Any] | None = None,
    selection: str | None = None,
) -> Attack:
    """Preset values first, then explicit overrides; the payload defaults to the task's."""
    preset: dict[str, Any] = {}
    preset_name = None
    if is_preset_path(spec):
        path = Path(spec)
        preset = read_preset(path)
        preset_name = path.stem
        method = preset["method"]
    else:
        method = spec
    trigger_cls = registry("attacks").get(method)
    if not (isinstance(trigger_cls, type) and issubclass(trigger_cls, Trigger)):
        raise UserError(f"attack '{method}' is not a codebackdoor Trigger subclass")
    trigger = build_dataclass(
        trigger_cls, {**preset.get("params", {}), **(params or {})}, what=f"attack '{method}'"
    )
    trigger.check_applies(task)
    payload_table = dict(preset.get("payload", {}))
    payload_name = payload or payload_table.pop("method", None) or task.default_payload
    if payload and payload != preset.get("payload", {}).get("method"):
        payload_table = {}
    if payload_name == task.default_payload and not preset.get("payload"):
        payload_table = {**task.default_payload_params, **payload_table}
    made_payload = make_payload(payload_name, {**payload_table, **(payload_params or {})})
    meta = {key: preset[key] for key in ("description", "citation", "source") if key in preset}
    return Attack(
        trigger=trigger,
        payload=made_payload,
        selection=selection or preset.get("selection", "random"),
        preset=preset_name,
        meta={"preset_" + key: value for key, value in meta.items()},
    )
