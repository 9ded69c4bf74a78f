"""The ``codebackdoor`` command line. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from codebackdoor import __version__
from codebackdoor.config import (
    DEFAULT_ATTACK,
    NO_ATTACK,
    RunConfig,
    config_fields,
    resolve_config,
)
from codebackdoor.errors import Stopped, UserError
from codebackdoor.identity import identity, run_id
from codebackdoor.registry import KINDS


def _key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    """``KEY=VALUE`` strings as a dict; None when the flag was not given."""
    if pairs is None:
        return None
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got '{pair}'")
        values[key.strip()] = value
    return values


# Every flag below stores under the RunConfig field it sets (its argparse ``dest``), so the
# config is built from the parsed flags without a map. Defaults stay None: a flag that was not
# given leaves the config file's value or the RunConfig default in place.
def _add_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task and data")
    group.add_argument("--task", help=f"task name (default: {RunConfig.task})")
    group.add_argument("--lang", help="code language of the task (python or java)")
    group.add_argument(
        "--data",
        help="local data (directory of {train,valid,test}.csv|jsonl, or one file) "
        "or hf:<dataset id>; default: the task's embedded corpus",
    )
    group.add_argument("--revision", dest="data_revision",
                       help="pinned revision (commit) of a hf: dataset")
    group.add_argument(
        "--columns",
        nargs="+",
        metavar="FIELD=COLUMN",
        help="column map, e.g. source=func target=label (default: source=src target=tgt)",
    )


# Flags for the common attack parameters; anything else goes through --param KEY=VALUE.
ATTACK_FLAGS = ("statement", "position", "variant", "words", "count", "token")


def _add_attack_arguments(parser: argparse.ArgumentParser, default_attack: str | None) -> None:
    group = parser.add_argument_group("attack")
    group.add_argument(
        "--attack",
        default=default_attack,
        help=f"attack name or preset TOML path ('{NO_ATTACK}' = clean"
        + (f"; default {default_attack})" if default_attack else "; default: clean)"),
    )
    group.add_argument("--rate", type=float,
                       help=f"poisoning rate in (0, 1] (default {RunConfig.rate})")
    group.add_argument("--seed", type=int, help=f"seed (default {RunConfig.seed})")
    group.add_argument("--selection", help="random (default), first (the DeCE scripts' rule) "
                       "or append (Ramakrishnan & Albarghouthi's poisoned copies)")
    group.add_argument("--statement", help="deadcode: the statement to insert")
    group.add_argument("--position", help="code triggers: first, random, last or "
                       "shared-statement (the DeCE Bugs2Fix script's place)")
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


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's config: the flags given, over ``--config`` (where the command has it), over
    the defaults."""
    config_file = getattr(args, "config", None)
    return resolve_config(Path(config_file) if config_file else None, _flags(args))


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields the flags set, None where a flag was not given."""
    flags = {name: getattr(args, name) for name in config_fields() if hasattr(args, name)}
    attack_params = _key_values(getattr(args, "param", None), "--param") or {}
    attack_params.update({flag: getattr(args, flag) for flag in ATTACK_FLAGS
                          if getattr(args, flag, None) is not None})
    flags["attack_params"] = attack_params or None
    flags["payload_params"] = _key_values(getattr(args, "payload_param", None),
                                          "--payload-param")
    flags["columns"] = _key_values(getattr(args, "columns", None), "--columns")
    return flags


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from codebackdoor.registry import describe, registry

    entries = []
    problems = []
    for kind in [args.kind] if args.kind else list(KINDS):
        reg = registry(kind)
        problems.extend(reg.problems)
        for name in reg.names():
            entry = reg.entry(name)
            try:
                description, citation = describe(entry.load())
            except UserError as exc:
                problems.append(str(exc))
                description, citation = "(failed to import: see below)", ""
            entries.append({"kind": KINDS[kind].singular, "name": name,
                            "description": description, "citation": citation,
                            "origin": entry.origin})
    if args.format == "json":
        print(json.dumps({"entries": entries, "problems": problems}, indent=2))
        return 0
    print(
        tabulate(
            [tuple(entry.values()) for entry in entries],
            headers=("kind", "name", "description", "citation", "from"),
            maxcolwidths=[None, None, 48, 40, None],
        )
    )
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def cmd_poison(args: argparse.Namespace) -> int:
    from codebackdoor.poison import poison, write_poisoned
    from codebackdoor.runner import attack_for, build_task

    config = config_from_args(args)
    if config.attack is None:
        raise UserError("poison needs an attack (--attack NAME or a preset path)")
    task = build_task(config)
    attack = attack_for(config, task)
    splits = task.load()
    data = poison(splits, task, attack, config.rate, config.seed)
    paths = write_poisoned(data, Path(args.out), overwrite=args.overwrite)
    if not args.no_stealth:
        from codebackdoor.stealth import measure, write_stealth

        paths.append(write_stealth(measure(splits.train, data), Path(args.out)))
    counts = data.manifest["counts"]
    skipped = counts["train"]["skipped"]
    done = "appended poisoned copies of" if attack.selection == "append" else "poisoned"
    print(
        f"{done} {counts['train']['poisoned']} of {counts['train']['total']} training "
        f"examples ({counts['train']['eligible']} eligible"
        + (", skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()) if skipped else "")
        + f"); triggered {counts['test']['triggered']} of {counts['test']['total']} test examples"
    )
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_attacks_stealth(args: argparse.Namespace) -> int:
    from codebackdoor.poison import poison
    from codebackdoor.runner import attack_for, build_task
    from codebackdoor.stealth import StealthSettings, filter_aurocs, measure, table

    if args.sample < 0:
        raise UserError(f"--sample {args.sample} must be 0 (all) or more")
    settings = StealthSettings(sample=args.sample, compile=not args.no_compile)
    records = []
    splits = None
    for spec in args.attacks:
        for rate in args.rates:
            config = resolve_config(None, {**_flags(args), "attack": spec, "rate": rate})
            task = build_task(config)
            attack = attack_for(config, task)
            splits = splits or task.load()  # every combination reads the same task and data
            data = poison(splits, task, attack, config.rate, config.seed)
            record = {"attack_spec": spec, **measure(splits.train, data, settings)}
            if args.runs:
                record["filter_auroc"] = filter_aurocs(Path(args.runs), record)
            records.append(record)
    if args.format == "json":
        print(json.dumps({"records": records}, indent=1, ensure_ascii=False))
    else:
        print(table(records, "github" if args.format == "markdown" else "simple"))
    return 0


def cmd_poison_check(args: argparse.Namespace) -> int:
    from codebackdoor.poison_check import compare, read_pairs
    from codebackdoor.runner import attack_for, build_task

    config = config_from_args(args)
    if config.attack is None:
        raise UserError("poison-check needs the attack to compare (--attack NAME or a preset)")
    task = build_task(config)
    clean = read_pairs(Path(args.clean), *args.pair_columns)
    released = read_pairs(Path(args.released), *args.pair_columns)
    counts = compare(clean, released, attack_for(config, task), config.lang, config.seed)
    print(json.dumps(counts, indent=1))
    return 0


DATA_FORMATS = ("table", "json")


def cmd_data_show(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from codebackdoor.data.stratify import label_counts, total_variation
    from codebackdoor.runner import build_task

    if args.format not in DATA_FORMATS:
        raise UserError(f"--format must be one of {', '.join(DATA_FORMATS)}, got '{args.format}'")
    if args.examples < 0:
        raise UserError(f"--examples must be 0 or more, got {args.examples}")
    task = build_task(config_from_args(args))
    splits = task.load()
    fingerprints = splits.fingerprints()
    names = ("train", "valid", "test")
    report: dict[str, dict[str, Any]] = {
        name: {"examples": len(getattr(splits, name)), "fingerprint": fingerprints[name]}
        for name in names
    }
    if task.output_kind == "label":
        for name in names:
            report[name]["labels"] = label_counts([e.target for e in getattr(splits, name)])
        for name in names:
            report[name]["tv_to_train"] = round(
                total_variation(report[name]["labels"], report["train"]["labels"]), 4)
    if args.format == "json":
        print(json.dumps({"task": task.name, "lang": task.lang, "splits": report,
                          "source": splits.source}, indent=1, sort_keys=True))
        return 0
    columns = ("examples", "fingerprint", "tv_to_train")[: 3 if "labels" in report["train"] else 2]
    print(tabulate([(name, *(report[name][column] for column in columns)) for name in names],
                   headers=("split", "examples", "fingerprint", "label TV to train")))
    print("source: " + json.dumps(splits.source, sort_keys=True))
    for example in splits.train[: args.examples]:
        print(f"\n--- {example.id}\n{example.source}\n=> {example.target}")
    return 0


def cmd_data_build_corpus(args: argparse.Namespace) -> int:
    from codebackdoor.data.harvest import build_corpus_file

    print(json.dumps(build_corpus_file(args.source, Path(args.out)), indent=1))
    return 0


# The embedded default (`codebackdoor run` with no arguments): clean training, the default
# attack with no defense, and the same with DeCE. Chosen by measurement (docs/results.md): a
# from-scratch classifier learns this task on 2 CPU cores in minutes.
DEFAULT_COMPARISON = (
    ("clean", {}),
    ("attack", {"attack": DEFAULT_ATTACK}),
    ("attack + DeCE", {"attack": DEFAULT_ATTACK, "defenses": ["dece"]}),
)

# The stages of a run that `codebackdoor run` names on the terminal as they begin.
LATER_STAGES = ("filter", "purify", "train", "evaluate")


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

    from codebackdoor.runner import run

    given = config_from_args(args)
    if args.config or any(value is not None for value in _flags(args).values()):
        configs = [("run", given)]
    else:
        configs = [(label, replace(given, **changes)) for label, changes in DEFAULT_COMPARISON]
        print(
            "codebackdoor run: the embedded default (clean, attack, attack + DeCE)", file=sys.stderr
        )
    rows = []
    for label, config in configs:

        def announce(label: str = label, config: Any = config) -> None:
            print(
                f"[{label}] run {run_id(config)}: task {config.task} ({config.lang}), "
                f"attack {config.attack or 'none'}, defenses {config.defenses or ['none']}, "
                f"model {config.model}, {config.epochs} epochs",
                file=sys.stderr,
            )
            if args.verbose:
                resolved = json.dumps(identity(config), sort_keys=True)
                print(f"  resolved config (saved as config.json): {resolved}", file=sys.stderr)

        def stage(name: str, label: str = label) -> None:
            # The stages before on_start (loading, poisoning, building the victim) only check
            # inputs; a run is announced once they pass, and its later stages are shown.
            if name in LATER_STAGES:
                print(f"[{label}] {name}", file=sys.stderr)

        outcome = run(config, Path(args.out), resume=args.resume, on_start=announce,
                      on_stage=stage)
        if outcome.main:
            rows.append(_summary_row(label, outcome))
    if not rows:  # another process of a data-parallel launch: the main one reports
        return 0
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

    suite = Suite.read(Path(args.suite), Path(args.data_root) if args.data_root else None)
    shard = Shard.parse(args.shard) if args.shard else None
    cells = [cell for cell in suite.cells() if shard is None or shard.takes(cell)]
    varying = suite.varying()
    if args.dry_run:
        print(tabulate([(cell.name, cell.run, cell.label(varying)) for cell in cells],
                       headers=("cell", "run id", "settings"), disable_numparse=True))
        print(f"{len(cells)} cells" + (f" in shard {args.shard}" if shard else ""))
        return 0
    out = Path(args.out or Path("results") / suite.name)
    if args.status:
        return _print_status(suite, out, cells)
    if args.executor:
        return _submit(args, suite, out, cells)

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


def _submit(args: argparse.Namespace, suite: Any, out: Path, cells: list[Any]) -> int:
    from codebackdoor.cluster import SchedulerOptions, submit

    options = SchedulerOptions(
        partition=args.partition, time_min=args.time, gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task, mem_gb=args.mem,
        array_parallelism=args.array_parallelism,
        extra=_key_values(args.slurm_option, "--slurm-option") or {},
    )
    jobs = submit(suite, out, cells, args.executor, options)
    print(f"suite {suite.name}: {len(jobs)} cells submitted ({args.executor}), "
          f"{len(cells) - len(jobs)} done or running; logs in {out / 'submitit'}; "
          f"progress: codebackdoor bench {args.suite} --status"
          + (f" --out {args.out}" if args.out else ""))
    if not args.wait:
        return 0
    for job in jobs:
        with contextlib.suppress(Exception):  # a failed cell recorded itself; the others go on
            job.result()
    return _print_status(suite, out, cells) if jobs else 0


def _print_status(suite: Any, out: Path, cells: list[Any]) -> int:
    """The state of every cell and a count per state; 1 when a cell failed."""
    from tabulate import tabulate

    from codebackdoor.cluster import STATES, status

    records = status(suite, out, cells)
    print(tabulate([(r["cell"], r["state"], r["settings"], r.get("error", "").split("\n")[0])
                    for r in records], headers=("cell", "state", "settings", "error"),
                   disable_numparse=True))
    counts = {state: sum(r["state"] == state for r in records) for state in STATES}
    print(f"suite {suite.name}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 1 if counts["failed"] else 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codebackdoor",
        description="Backdoor attacks and defenses for code models, under one set of rules.",
    )
    parser.add_argument("--version", action="version", version=f"codebackdoor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="every registered task, attack, payload, defense, model preset and metric"
    )
    listing.add_argument("--kind", choices=tuple(KINDS))
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=cmd_list)

    poisoning = commands.add_parser(
        "poison",
        help="poison a task's training data and trigger its test set",
        description="Write train.jsonl (poisoned), valid.jsonl, test.jsonl (clean), "
        "test_triggered.jsonl, manifest.json and stealth.json (docs/stealth.md) to --out.",
    )
    _add_task_arguments(poisoning)
    _add_attack_arguments(poisoning, default_attack=DEFAULT_ATTACK)
    poisoning.add_argument("--out", required=True, help="output directory")
    poisoning.add_argument(
        "--overwrite", action="store_true", help="replace an existing poisoned set in --out"
    )
    poisoning.add_argument("--no-stealth", action="store_true",
                           help="skip stealth.json (codebackdoor attacks stealth; docs/stealth.md)")
    poisoning.set_defaults(func=cmd_poison)

    attacks = commands.add_parser("attacks", help="inspect attacks")
    attack_commands = attacks.add_subparsers(dest="attacks_command", metavar="ACTION",
                                             required=True)
    stealth = attack_commands.add_parser(
        "stealth",
        help="how visible each attack's poisoned inputs are (docs/stealth.md)",
        description="Poison the task's training split with each attack at each rate and "
        "compare every poisoned input with its clean original: n-gram cross-entropy, token "
        "edit distance, parse validity, javac compile validity (Java), and with --runs the "
        "AUROC of each filter defense's saved scores in finished runs.",
    )
    _add_task_arguments(stealth)
    stealth.add_argument("--attack", dest="attacks", action="append", required=True,
                         help="attack name or preset TOML path (repeatable)")
    stealth.add_argument("--rate", dest="rates", type=float, action="append", required=True,
                         help="poisoning rate in (0, 1] (repeatable)")
    stealth.add_argument("--seed", type=int, help=f"seed (default {RunConfig.seed})")
    stealth.add_argument("--sample", type=int, default=200,
                         help="poisoned inputs measured per attack and rate (default 200; 0: all)")
    stealth.add_argument("--no-compile", action="store_true", help="skip javac on Java inputs")
    stealth.add_argument("--runs", help="results directory whose finished filter-defense runs "
                         "give the AUROC columns")
    stealth.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    stealth.set_defaults(func=cmd_attacks_stealth)

    checking = commands.add_parser(
        "poison-check",
        help="compare the project's poisoning with a poisoned file a paper released, row by row",
        description="Both CSV files hold the same rows in the same order. Prints the rows each "
        "side triggered and how many inputs and targets are equal (exactly, with whitespace "
        "collapsed, with it removed) as JSON.",
    )
    checking.add_argument("clean", help="the clean CSV")
    checking.add_argument("released", help="the released poisoned CSV, same rows")
    checking.add_argument("--task", help=f"task name (default: {RunConfig.task})")
    checking.add_argument("--lang", help="code language of the task (python or java)")
    checking.add_argument("--pair-columns", nargs=2, default=("src", "tgt"),
                          metavar=("SOURCE", "TARGET"), help="the two CSV columns (src tgt)")
    _add_attack_arguments(checking, default_attack=None)
    checking.set_defaults(func=cmd_poison_check)

    running = commands.add_parser(
        "run",
        help="poison, defend, train, evaluate; write one result JSON per run",
        description="With no arguments: the embedded default comparison (clean, attack, "
        "attack + DeCE). Flags override --config FILE.toml; keys are the RunConfig fields.",
    )
    running.add_argument("--config", help="TOML file of run settings (flags override it)")
    _add_task_arguments(running)
    _add_attack_arguments(running, default_attack=None)
    training = running.add_argument_group("defense, model and training")
    training.add_argument(
        "--defense", dest="defenses", action="append",
        help="defense name or preset TOML (repeatable)",
    )
    training.add_argument(
        "--model",
        help="preset (codebackdoor list --kind models), pretrained:SIZE-ARCH (built by "
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
    precision = training.add_mutually_exclusive_group()
    for flag in ("bf16", "fp16"):
        precision.add_argument(
            f"--{flag}", dest="precision", action="store_const", const=flag, default=None,
            help=f"train and predict under {flag} mixed precision (default: bf16 on a GPU that "
            "supports it, float32 otherwise)",
        )
    training.add_argument(
        "--gradient-checkpointing", action="store_true", default=None,
        help="recompute activations in the backward pass (less memory, more compute)",
    )
    training.add_argument(
        "--fused", action=argparse.BooleanOptionalAction, default=None,
        help="loss fused with the output layer where supported (default: on); --no-fused "
        "trains on the logits",
    )
    training.add_argument(
        "--length-grouped", action=argparse.BooleanOptionalAction, default=None,
        help="batches of similar input length, in an order drawn per seed and epoch (default: "
        "on); --no-length-grouped draws batches uniformly at random",
    )
    training.add_argument("--samples", type=int,
                          help="also sample this many outputs per test input: ASR@1, ASR@k and "
                          "the clean metric's mean over samples (default 0: greedy only)")
    training.add_argument("--temperature", type=float, help="sampling temperature (default 1)")
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
    running.add_argument("--verbose", action="store_true",
                         help="also print each run's resolved config (it is saved as config.json)")
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
    bench.add_argument("--data-root", help="folder of the external data sets the suite reads "
                       "(default: the suite's data_root)")
    bench.add_argument("--status", action="store_true",
                       help="print each cell's state (done, running, interrupted, failed, "
                       "pending) from the output folder, and stop")
    cluster = bench.add_argument_group(
        "cluster (submitit; pip install 'codebackdoor[cluster]')")
    cluster.add_argument("--executor", choices=("local", "slurm"),
                         help="submit the cells as one job array instead of running them here")
    cluster.add_argument("--wait", action="store_true",
                         help="with --executor: wait for the jobs and print the status")
    cluster.add_argument("--partition", help="SLURM partition")
    cluster.add_argument("--time", type=int, default=24 * 60,
                         help="time limit of one cell in minutes (default 1440); a cell stopped "
                         "by it is requeued and resumes")
    cluster.add_argument("--gpus-per-task", type=int)
    cluster.add_argument("--cpus-per-task", type=int)
    cluster.add_argument("--mem", type=int, help="memory per cell in GB")
    cluster.add_argument("--array-parallelism", type=int, default=256,
                         help="cells running at once (default 256)")
    cluster.add_argument("--slurm-option", nargs="+", metavar="KEY=VALUE",
                         help="any other sbatch option, e.g. account=me qos=high")
    bench.set_defaults(func=cmd_bench)

    data = commands.add_parser("data", help="inspect a task's data")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = data_commands.add_parser("show", help="split sizes, fingerprints, a few examples")
    _add_task_arguments(show)
    show.add_argument("--examples", type=int, default=3,
                      help="examples to print with --format table (default 3)")
    show.add_argument("--format", default="table",
                      help="table (default) or json: per split its size, fingerprint and, for "
                      "label tasks, label counts and total variation distance to train")
    show.set_defaults(func=cmd_data_show)
    build = data_commands.add_parser(
        "build-corpus",
        help="harvest Python functions into a corpus file (how the packaged corpus is made)")
    build.add_argument("--source", default="stdlib",
                       help="stdlib (this interpreter's standard library; default) or a "
                       "directory, e.g. a site-packages")
    build.add_argument("--out", required=True, help="the corpus file to write (*.jsonl.gz)")
    build.set_defaults(func=cmd_data_build_corpus)

    from codebackdoor.leaderboard.cli import add_leaderboard_command
    from codebackdoor.pretrain.cli import add_pretrain_command

    add_leaderboard_command(commands)
    add_pretrain_command(commands)
    return parser


# What an interrupted command keeps, and how to go on from there.
RESUME_HINTS = {
    "run": "every finished epoch is kept in its checkpoint: run the same command with --resume "
           "to continue",
    "bench": "finished cells are kept and the interrupted one resumes from its last epoch "
             "checkpoint: run the same command again to continue",
    "pretrain": "the last checkpoint is kept: run the same command with --resume to continue",
}


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise Stopped("SIGTERM")


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"codebackdoor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        how = stop.signal_name if isinstance(stop, Stopped) else "SIGINT"
        hint = RESUME_HINTS.get(args.command, "nothing was written half-way")
        print(f"codebackdoor: interrupted ({how}); {hint}", file=sys.stderr)
        return 143 if isinstance(stop, Stopped) else 130
    except BrokenPipeError:
        # The reader went away (`... | head`): what it wanted was printed. Point stdout at
        # devnull so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
