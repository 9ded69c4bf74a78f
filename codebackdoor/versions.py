"""What a result depends on besides its config: the versions of the packages (read from their
metadata, nothing imported) and the hardware it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from codebackdoor import __version__
from codebackdoor.registry import KINDS

TRACKED = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "datasets",
    "peft",
    "tree-sitter",
    "tree-sitter-python",
    "tree-sitter-java",
    "sacrebleu",
    "sqlglot",
    "bandit",
    "scikit-learn",
    "numpy",
)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plugin_versions() -> dict[str, str]:
    """Distributions that register codebackdoor entry points, with their versions."""
    found: dict[str, str] = {}
    for kind in KINDS.values():
        for ep in metadata.entry_points(group=kind.group):
            if ep.dist is not None:
                found[ep.dist.name] = ep.dist.version
    return dict(sorted(found.items()))


def versions() -> dict[str, object]:
    packages = {name: v for name in TRACKED if (v := _version(name)) is not None}
    return {
        "codebackdoor": __version__,
        "python": platform.python_version(),
        "packages": packages,
        "plugins": plugin_versions(),
    }


def hardware() -> dict[str, Any]:
    """The device, cores and torch threads: on CPU, results repeat on one machine type and
    thread count, so both are recorded."""
    import torch

    info: dict[str, Any] = {
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # Processes of a data-parallel launch (torchrun, accelerate launch) that trained it.
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
    }
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def cpu_model() -> str:
    """The CPU's model name: float results on CPU repeat on one CPU model and thread count,
    and may differ on another (different instruction sets, different rounding)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
