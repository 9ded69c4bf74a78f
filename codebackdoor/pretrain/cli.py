"""The ``codebackdoor pretrain`` command."""

from __future__ import annotations

import argparse
import re
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.pretrain.bimodal import DEFAULT_MIX, parse_mix
from codebackdoor.pretrain.objectives import TextInfilling
from codebackdoor.pretrain.sizes import ARCHITECTURES, SIZES

_SCALES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _count(text: str) -> int:
    """``12000000``, ``12M``, ``1.5B``: a token count."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGbB]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a token count: {text!r} (e.g. 12000000, 12M)")
    return int(float(match[1]) * _SCALES[match[2].lower()])


def _duration(text: str) -> float:
    """``1500``, ``25m``, ``1.5h``: seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhSMH]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 1500, 25m, 1h)")
    return float(match[1]) * _SECONDS[match[2].lower()]


def add_pretrain_command(commands: Any) -> None:
    """Add ``pretrain`` to the CLI's subcommands (``commands`` is argparse's subparsers)."""
    parser = commands.add_parser(
        "pretrain",
        help="pretrain a code model offline on this machine's Python and Java sources",
        description="Build a corpus from the standard library, site-packages and the JDK "
        "sources, train a tokenizer on it, and pretrain with the architecture's objective (T5: "
        "span corruption mixed with CodeT5's bimodal dual generation, see --mix; GPT-2: causal "
        "LM; RoBERTa: masked LM). Writes a Hugging Face directory and pretrain_card.json; use "
        "it as --model pretrained:SIZE-ARCH or --model DIR.",
    )
    parser.add_argument("--arch", required=True, choices=ARCHITECTURES)
    parser.add_argument("--size", default="tiny", choices=SIZES, help="default tiny (CPU)")
    parser.add_argument(
        "--out", help="output directory (default: the cache, as pretrained:SIZE-ARCH)"
    )
    parser.add_argument(
        "--name",
        help="store in the cache as pretrained:NAME instead of pretrained:SIZE-ARCH (a second "
        "recipe of one size beside the first)",
    )
    parser.add_argument(
        "--max-tokens", type=_count, help="corpus tokens to train on (default: the size's)"
    )
    parser.add_argument(
        "--max-time", type=_duration, help="training time budget: seconds, or 25m, 1h"
    )
    parser.add_argument(
        "--mix",
        help="T5 objectives and their shares of each batch, default "
        + ",".join(f"{name}={share:g}" for name, share in DEFAULT_MIX.items())
        + ". span: span corruption of corpus blocks (Raffel et al. 2020); denoise: BART's "
        f"text infilling of a block's first {TextInfilling.window} tokens, the target the "
        "whole uncorrupted text (as PLBART, Ahmad et al. 2021); nl2code: generate a "
        "function from its docstring's first sentence; code2nl: that sentence from the "
        "function (CodeT5's bimodal dual generation, Wang et al. 2021), on the documented "
        "functions of the embedded corpus's train split. span=1 is the code-only recipe",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's own); on a loaded machine 1 is faster, "
        "as threads that wait for each other lose most when a core is taken away",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted pretraining or one stopped by --max-time (pass a larger one)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a finished model in the output"
    )
    corpus = parser.add_argument_group("corpus")
    corpus.add_argument(
        "--python-root",
        action="append",
        help="directory of .py files (repeatable; default: stdlib and site-packages)",
    )
    corpus.add_argument("--jdk-src", help="the JDK's src.zip (default: found as for java tasks)")
    corpus.add_argument("--no-java", action="store_true", help="leave the JDK sources out")
    parser.set_defaults(func=cmd_pretrain)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from codebackdoor.models.pretrained import pretrained_directory
    from codebackdoor.pretrain.corpus import CorpusOptions
    from codebackdoor.pretrain.pretraining import pretrain

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads} must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    options: dict[str, Any] = {"java": not args.no_java, "jdk_src": args.jdk_src}
    if args.python_root:
        options["python_roots"] = args.python_root
    if args.no_java and args.jdk_src:
        raise UserError("--jdk-src and --no-java contradict each other")
    if args.out and args.name:
        raise UserError("--out and --name contradict each other; give one")
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):
        raise UserError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-'")
    out_dir = Path(args.out) if args.out else None
    if args.name:
        out_dir = pretrained_directory(args.name)
    out = pretrain(
        args.arch,
        args.size,
        out_dir,
        max_tokens=args.max_tokens,
        max_time=args.max_time,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
        corpus=CorpusOptions(**options),
        mix=parse_mix(args.mix) if args.mix is not None else None,
    )
    print(out)
    return 0
