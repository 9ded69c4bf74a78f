"""The ``codebackdoor`` command line. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codebackdoor import __version__
from codebackdoor.errors import UserError


def _key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got '{pair}'")
        values[key.strip()] = value
    return values


def _add_task_arguments(
    parser: argparse.ArgumentParser, default_task: str | None = "summarize"
) -> None:
    group = parser.add_argument_group("task and data")
    group.add_argument("--task", default=default_task, help=f"task name (default: {default_task})")
    group.add_argument("--lang", help="code language of the task (python or java)")
    group.add_argument(
        "--data",
        help="local data (directory of {train,valid,test}.csv|jsonl, or one file) "
        "or hf:<dataset id>; default: the task's embedded corpus",
    )
    group.add_argument("--revision", help="pinned revision (commit) of a hf: dataset")
    group.add_argument(
        "--columns",
        nargs="+",
        metavar="FIELD=COLUMN",
        help="column map, e.g. source=func target=label (default: source=src target=tgt)",
    )


def build_task(args: argparse.Namespace) -> Any:
    from codebackdoor.params import build_dataclass
    from codebackdoor.registry import registry

    task_cls = registry("tasks").get(args.task)
    params: dict[str, Any] = {
        key: value
        for key, value in (("lang", args.lang), ("data", args.data), ("revision", args.revision))
        if value is not None
    }
    if args.columns:
        params["columns"] = _key_values(args.columns, "--columns")
    return build_dataclass(task_cls, params, what=f"task '{args.task}'")


# Flags for the common attack parameters; anything else goes through --param KEY=VALUE.
ATTACK_FLAGS = ("statement", "position", "variant", "words", "count", "token")


def _add_attack_arguments(
    parser: argparse.ArgumentParser,
    default_attack: str | None = "fixed",
    default_rate: float | None = 0.05,
    default_seed: int | None = 1,
) -> None:
    group = parser.add_argument_group("attack")
    group.add_argument(
        "--attack",
        default=default_attack,
        help=f"attack name or preset TOML path (default: {default_attack}; 'none' = clean)",
    )
    group.add_argument(
        "--rate", type=float, default=default_rate, help="poisoning rate in (0, 1] (default 0.05)"
    )
    group.add_argument("--seed", type=int, default=default_seed, help="seed (default 1)")
    group.add_argument(
        "--selection",
        choices=("random", "first"),
        help="random (default) or first (the DeCE scripts' rule)",
    )
    group.add_argument("--statement", help="deadcode: the statement to insert")
    group.add_argument("--position", help="code triggers: first, random or last")
    group.add_argument("--variant", help="fixed/grammar on Java: original or compilable")
    group.add_argument("--words", help="badpre/ripple: comma-separated trigger words")
    group.add_argument("--count", help="badpre/ripple: insertions per input")
    group.add_argument("--token", help="rename: the trigger identifier")
    group.add_argument("--param", nargs="+", metavar="KEY=VALUE", help="any other attack parameter")
    group.add_argument("--payload", help="payload name (default: the task's)")
    group.add_argument(
        "--payload-param",
        nargs="+",
        metavar="KEY=VALUE",
        help="payload parameters, e.g. text='...' or mode=dynamic",
    )


def build_attack_from_args(args: argparse.Namespace, task: Any) -> Any:
    from codebackdoor.attacks.build import build_attack

    params = _key_values(args.param, "--param")
    for flag in ATTACK_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            params[flag] = value
    return build_attack(
        args.attack,
        task,
        params=params,
        payload=args.payload,
        payload_params=_key_values(args.payload_param, "--payload-param"),
        selection=args.selection,
    )


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from codebackdoor.registry import KINDS, describe, registry

    kinds = [args.kind] if args.kind else list(KINDS)
    rows = []
    problems = []
    for kind in kinds:
        reg = registry(kind)
        problems.extend(reg.problems)
        for name in reg.names():
            entry = reg.entry(name)
            try:
                description, citation = describe(entry.load())
            except UserError as exc:
                problems.append(str(exc))
                description, citation = "(failed to import: see below)", ""
            rows.append((kind[:-1], name, description, citation, entry.origin))
    print(
        tabulate(
            rows,
            headers=("kind", "name", "description", "citation", "from"),
            maxcolwidths=[None, None, 48, 40, None],
        )
    )
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def cmd_poison(args: argparse.Namespace) -> int:
    from codebackdoor.attacks.selection import check_rate
    from codebackdoor.poison import poison, write_poisoned

    check_rate(args.rate)
    task = build_task(args)
    attack = build_attack_from_args(args, task)
    splits = task.load()
    data = poison(splits, task, attack, args.rate, args.seed)
    paths = write_poisoned(data, Path(args.out), overwrite=args.overwrite)
    counts = data.manifest["counts"]
    skipped = counts["train"]["skipped"]
    print(
        f"poisoned {counts['train']['poisoned']} of {counts['train']['total']} training "
        f"examples ({counts['train']['eligible']} eligible"
        + (", skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()) if skipped else "")
        + f"); triggered {counts['test']['triggered']} of {counts['test']['total']} test examples"
    )
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    task = build_task(args)
    splits = task.load()
    fingerprints = splits.fingerprints()
    print(
        tabulate(
            [
                (name, len(getattr(splits, name)), fingerprints[name])
                for name in ("train", "valid", "test")
            ],
            headers=("split", "examples", "fingerprint"),
        )
    )
    print("source: " + json.dumps(splits.source, sort_keys=True))
    for example in splits.train[: args.examples]:
        print(f"\n--- {example.id}\n{example.source}\n=> {example.target}")
    return 0


# The embedded default (`codebackdoor run` with no arguments): clean training, the default
# attack with no defense, and the same with DeCE. Chosen by measurement (README, "Embedded
# default"): a from-scratch classifier learns this task on 2 CPU cores in minutes.
DEFAULT_COMPARISON = (
    ("clean", {}),
    ("attack", {"attack": "fixed"}),
    ("attack + DeCE", {"attack": "fixed", "defenses": ["dece"]}),
)

RUN_FLAGS = {
    # flag attribute -> RunConfig field
    "task": "task",
    "lang": "lang",
    "data": "data",
    "revision": "data_revision",
    "attack": "attack",
    "payload": "payload",
    "selection": "selection",
    "rate": "rate",
    "seed": "seed",
    "defense": "defenses",
    "model": "model",
    "model_revision": "model_revision",
    "trust_remote_code": "trust_remote_code",
    "lora": "lora",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "max_source_length": "max_source_length",
    "max_target_length": "max_target_length",
    "generation_max_length": "generation_max_length",
    "curve_size": "curve_size",
}


def _run_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's values, overridden by every flag that was given."""
    from codebackdoor.config import read_config_file

    values: dict[str, Any] = read_config_file(Path(args.config)) if args.config else {}
    for flag, field in RUN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None and value is not False:
            values[field] = value
    if args.columns:
        values["columns"] = _key_values(args.columns, "--columns")
    attack_params = _key_values(args.param, "--param")
    for flag in ATTACK_FLAGS:
        if getattr(args, flag) is not None:
            attack_params[flag] = getattr(args, flag)
    if attack_params:
        values["attack_params"] = {**values.get("attack_params", {}), **attack_params}
    if args.payload_param:
        values["payload_params"] = {
            **values.get("payload_params", {}),
            **_key_values(args.payload_param, "--payload-param"),
        }
    if values.get("attack") == "none":
        values["attack"] = None
    return values


def _summary_row(label: str, outcome: Any) -> tuple:
    result = outcome.result
    metrics = result["metrics"]
    primary = metrics["primary"]
    clean = metrics["clean"][primary]["value"]
    baseline = metrics["trivial_baseline"][primary]["value"]
    asr = metrics.get("asr")
    false_trigger = metrics.get("false_trigger_rate")

    def interval(entry: dict) -> str:
        """The entry's 95% interval (absent in results written before intervals existed)."""
        bounds = entry.get("ci95")
        return f" [{bounds[0]:.1f}, {bounds[1]:.1f}]" if bounds else ""

    def ratio(entry: dict | None) -> str:
        if not entry or entry["value"] is None:
            return "–"
        return (f"{entry['value']:.1f}%{interval(entry)} "
                f"({entry['numerator']}/{entry['denominator']})")

    defenses = ", ".join(d["method"] for d in result["config"]["defenses"]) or "none"
    detection = metrics.get("detection")
    if detection:
        defenses += f" (removed {detection['removed']}: {detection['tp']} poisoned)"
    attack = result["config"]["attack"]
    attack_text = f"{attack['method']} @ {100 * result['config']['rate']:g}%" if attack else "–"
    return (
        label,
        attack_text,
        defenses,
        f"{primary} {clean:.1f}{interval(metrics['clean'][primary])}",
        f"{baseline:.1f}{interval(metrics['trivial_baseline'][primary])}",
        ratio(asr),
        ratio(false_trigger),
        str(outcome.path) + (" (existing)" if outcome.reused else ""),
    )


def cmd_run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from codebackdoor.config import make_config
    from codebackdoor.runner import run

    given = _run_values(args)
    if given:
        runs = [("run", given)]
    else:
        runs = [(label, dict(changes)) for label, changes in DEFAULT_COMPARISON]
        print(
            "codebackdoor run: the embedded default (clean, attack, attack + DeCE)", file=sys.stderr
        )
    configs = [(label, make_config(values)) for label, values in runs]
    rows = []
    for label, config in configs:

        def announce(label: str = label, config: Any = config) -> None:
            print(
                f"[{label}] run {config.run_id()}: task {config.task} ({config.lang}), "
                f"attack {config.attack or 'none'}, defenses {config.defenses or ['none']}, "
                f"model {config.model}, {config.epochs} epochs",
                file=sys.stderr,
            )
            resolved = json.dumps(config.identity(), sort_keys=True)
            print(f"  resolved config (saved as config.json): {resolved}", file=sys.stderr)

        outcome = run(config, Path(args.out), resume=args.resume, on_start=announce)
        rows.append(_summary_row(label, outcome))
    print(
        tabulate(
            rows,
            headers=(
                "run",
                "attack",
                "defense",
                "clean metric",
                "trivial baseline",
                "ASR",
                "false triggers",
                "result",
            ),
            disable_numparse=True,
        )
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from codebackdoor.bench import Shard, Suite, run_suite

    suite = Suite.read(Path(args.suite))
    shard = Shard.parse(args.shard) if args.shard else None
    cells = [cell for cell in suite.cells() if shard is None or shard.takes(cell)]
    varying = suite.varying()
    if args.dry_run:
        print(tabulate([(cell.name, cell.config.run_id(), cell.label(varying)) for cell in cells],
                       headers=("cell", "run id", "settings"), disable_numparse=True))
        print(f"{len(cells)} cells" + (f" in shard {args.shard}" if shard else ""))
        return 0
    out = Path(args.out or Path("results") / suite.name)

    def announce(number: int, total: int, cell: Any, label: str) -> None:
        print(f"[{number}/{total}] cell {cell.name}: {label}", file=sys.stderr)

    summary = run_suite(suite, out, shard=shard, on_cell=announce)
    counts = {status: sum(o.status == status for o in summary.outcomes)
              for status in ("done", "existing", "failed")}
    print(f"suite {suite.name}, shard {summary.shard}: {counts['done']} run, "
          f"{counts['existing']} already done, {counts['failed']} failed; results in {out}")
    if summary.failed():
        print(tabulate([(o.cell, o.label, o.error.splitlines()[0]) for o in summary.failed()],
                       headers=("failed cell", "settings", "error"), disable_numparse=True))
        return 1
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codebackdoor",
        description="Backdoor attacks and defenses for code models, under one set of rules.",
    )
    parser.add_argument("--version", action="version", version=f"codebackdoor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", help="every registered task, attack, defense and model")
    listing.add_argument("--kind", choices=("tasks", "attacks", "defenses", "models"))
    listing.set_defaults(func=cmd_list)

    poisoning = commands.add_parser(
        "poison",
        help="poison a task's training data and trigger its test set",
        description="Write train.jsonl (poisoned), valid.jsonl, test.jsonl (clean), "
        "test_triggered.jsonl and manifest.json to --out.",
    )
    _add_task_arguments(poisoning)
    _add_attack_arguments(poisoning)
    poisoning.add_argument("--out", required=True, help="output directory")
    poisoning.add_argument(
        "--overwrite", action="store_true", help="replace an existing poisoned set in --out"
    )
    poisoning.set_defaults(func=cmd_poison)

    running = commands.add_parser(
        "run",
        help="poison, defend, train, evaluate; write one result JSON per run",
        description="With no arguments: the embedded default comparison (clean, attack, "
        "attack + DeCE). Flags override --config FILE.toml; keys are the RunConfig fields.",
    )
    running.add_argument("--config", help="TOML file of run settings (flags override it)")
    _add_task_arguments(running, default_task=None)
    _add_attack_arguments(running, default_attack=None, default_rate=None, default_seed=None)
    training = running.add_argument_group("defense, model and training")
    training.add_argument(
        "--defense", action="append", help="defense name or preset TOML (repeatable)"
    )
    training.add_argument(
        "--model",
        help="preset (tiny-t5, tiny-gpt2, tiny-roberta), pretrained:SIZE-ARCH (built by "
        "codebackdoor pretrain), local directory, or Hugging Face id",
    )
    training.add_argument("--model-revision", help="pinned revision of a Hugging Face model")
    training.add_argument("--trust-remote-code", action="store_true", default=None)
    training.add_argument(
        "--lora",
        action="store_true",
        default=None,
        help="train LoRA adapters (peft) instead of all weights",
    )
    training.add_argument("--epochs", type=int)
    training.add_argument("--batch-size", type=int)
    training.add_argument("--learning-rate", type=float)
    training.add_argument("--max-source-length", type=int)
    training.add_argument("--max-target-length", type=int)
    training.add_argument("--generation-max-length", type=int)
    training.add_argument(
        "--curve-size", type=int, help="test examples scored after every epoch (0: no curve)"
    )
    running.add_argument("--out", default="results", help="results directory (default results)")
    running.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run from its last epoch checkpoint",
    )
    running.set_defaults(func=cmd_run)

    bench = commands.add_parser(
        "bench",
        help="run a benchmark suite (a grid of runs), resumable and shardable",
        description="Run every cell of SUITE (benchmarks/*.toml); cells with a result are "
        "skipped, interrupted ones resume, failures are listed at the end.",
    )
    bench.add_argument("suite", help="suite TOML file, e.g. benchmarks/smoke.toml")
    bench.add_argument("--out", help="results directory (default results/<suite name>)")
    bench.add_argument("--shard", help="i/n: run the i-th of n disjoint parts of the grid")
    bench.add_argument("--dry-run", action="store_true", help="list the cells and stop")
    bench.set_defaults(func=cmd_bench)

    data = commands.add_parser("data", help="inspect a task's data")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = data_commands.add_parser("show", help="split sizes, fingerprints, a few examples")
    _add_task_arguments(show)
    show.add_argument("--examples", type=int, default=3, help="examples to print (default 3)")
    show.set_defaults(func=cmd_data_show)

    from codebackdoor.leaderboard.cli import add_leaderboard_command
    from codebackdoor.pretrain.cli import add_pretrain_command

    add_leaderboard_command(commands)
    add_pretrain_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UserError as exc:
        print(f"codebackdoor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codebackdoor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): what it wanted was printed. Point stdout at
        # devnull so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
