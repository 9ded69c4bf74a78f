"""What every benchmark here prints with ``--json``: one JSON object instead of its tables.

The object holds the benchmark's name, its settings (its command-line options), the machine it
ran on and the benchmark's own measurements; each comparison in them names its baseline, which
was measured in the same run, and gives the ratio of every value to it, computed here so that
the tables and the JSON show the same ratios. Not a benchmark itself; the benchmarks import it
from beside them (``python benchmarks/perf/NAME.py`` puts this directory on the path).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (measurements, baseline, ratios, machine) "
                        "instead of the tables")


def ratios(values: dict[str, float], baseline: str, *, invert: bool = False
           ) -> dict[str, float | None]:
    """Each value over the baseline's value, or with ``invert`` the baseline's over each (a
    speed-up from times); None where the divisor is 0."""
    base = values[baseline]
    if invert:
        return {name: base / value if value else None for name, value in values.items()}
    return {name: value / base if base else None for name, value in values.items()}


def comparison(values: dict[str, float], baseline: str, unit: str, *, invert: bool = False,
               **details: Any) -> dict[str, Any]:
    """Values measured in one run beside the baseline among them, with their ratios to it."""
    return {
        "baseline": baseline,
        "unit": unit,
        "values": values,
        "ratio": f"{baseline} / value" if invert else f"value / {baseline}",
        "ratios": ratios(values, baseline, invert=invert),
        **details,
    }


def ratio_text(ratio: float | None, digits: int = 2) -> str:
    """A ratio as the tables print it; a dash where the baseline was 0 (a tiny run's memory)."""
    return "–" if ratio is None else f"{ratio:.{digits}f}x"


def _processor() -> str:
    # platform.processor() is empty on most Linux systems; the CPU model is in /proc/cpuinfo.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(torch_threads: int | None = None) -> dict[str, Any]:
    """The machine and software a result was measured with. ``torch_threads``: the threads the
    measuring processes used where they are not this one."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "processor": _processor(),
        "platform": platform.platform(),
        "torch_threads": torch_threads if torch_threads is not None else torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }


def document(benchmark: str, args: argparse.Namespace, body: dict[str, Any], *,
             internal: tuple[str, ...] = (), torch_threads: int | None = None) -> dict[str, Any]:
    """The object ``--json`` prints; ``internal`` names options that are not settings (the
    worker processes' own)."""
    settings = {key: value for key, value in vars(args).items()
                if key != "json" and key not in internal}
    return {"benchmark": benchmark, "settings": settings, "machine": machine(torch_threads),
            **body}


def emit(benchmark: str, args: argparse.Namespace, body: dict[str, Any], **options: Any) -> None:
    print(json.dumps(document(benchmark, args, body, **options), indent=2), flush=True)
