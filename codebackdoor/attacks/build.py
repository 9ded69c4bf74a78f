"""Resolve ``--attack NAME|PRESET.toml`` plus overrides into an Attack for a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codebackdoor.attacks.base import Attack
from codebackdoor.attacks.payloads import make_payload
from codebackdoor.params import build_dataclass
from codebackdoor.presets import DESCRIPTIVE_KEYS, Preset, is_preset_path
from codebackdoor.registry import registry

# What an attack preset may say besides the method and its parameters.
ATTACK_KEYS = ("selection", "payload")


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
    preset = Preset.read(Path(spec), "attack", ATTACK_KEYS) if is_preset_path(spec) else None
    method = preset.method if preset else spec
    trigger = build_dataclass(
        registry("attacks").get(method),
        {**(preset.params if preset else {}), **(params or {})},
        what=f"attack '{method}'",
    )
    trigger.check_applies(task)
    preset_payload = dict(preset.extra.get("payload", {})) if preset else {}
    payload_table = dict(preset_payload)
    payload_name = payload or payload_table.pop("method", None) or task.default_payload
    if payload and payload != preset_payload.get("method"):
        payload_table = {}
    if payload_name == task.default_payload and not preset_payload:
        payload_table = {**task.default_payload_params, **payload_table}
    made_payload = make_payload(payload_name, {**payload_table, **(payload_params or {})})
    meta = {key: getattr(preset, key) for key in DESCRIPTIVE_KEYS
            if preset and getattr(preset, key)}
    return Attack(
        trigger=trigger,
        payload=made_payload,
        selection=selection or (preset.extra.get("selection") if preset else None) or "random",
        preset=preset.name if preset else None,
        meta={"preset_" + key: value for key, value in meta.items()},
    )
