"""``codebackdoor leaderboard build|show|compare|html|plots``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codebackdoor.leaderboard import (
    DEFAULT_HTML,
    DEFAULT_LEADERBOARD,
    DEFAULT_PUBLISHED,
)
from codebackdoor.leaderboard.show import FORMATS, SORTS


def _rows(path: Path) -> list[dict[str, Any]]:
    from codebackdoor.errors import UserError
    from codebackdoor.leaderboard.build import load_leaderboard
    from codebackdoor.leaderboard.rows import label_rows

    if not Path(path).exists():
        raise UserError(f"leaderboard not found: {path} (make it with: codebackdoor "
                        "leaderboard build RESULTS_DIR)")
    return label_rows(load_leaderboard(path)["rows"])


def cmd_build(args: argparse.Namespace) -> int:
    from codebackdoor.leaderboard.build import build

    report = build([Path(p) for p in args.results], Path(args.out))
    for problem in report.skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"{report.path}: {report.rows} rows from {report.runs} runs "
          f"({report.read} result files read, {len(report.skipped)} skipped)")
    return 1 if report.skipped else 0


def _selected_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The leaderboard's rows that pass the --task/--attack/--defense filters."""
    from codebackdoor.leaderboard.show import select

    return select(_rows(Path(args.leaderboard)), task=args.task, attack=args.attack,
                  defense=args.defense)


def cmd_show(args: argparse.Namespace) -> int:
    from codebackdoor.leaderboard.show import order, show

    print(show(order(_selected_rows(args), args.sort), args.format, cost=args.cost))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from codebackdoor.leaderboard.compare import compare, report
    from codebackdoor.leaderboard.published import read_published

    if args.baseline is not None and args.baseline_model is not None:
        from codebackdoor.errors import UserError

        raise UserError("give --baseline (defenses on one victim) or --baseline-model "
                        "(victims in one cell), not both")
    if args.baseline is not None:
        from codebackdoor.leaderboard import paired

        pairs = paired.compare_baseline(_rows(Path(args.leaderboard)), args.baseline,
                                        Path(args.leaderboard))
        print(paired.report(pairs, args.format))
        return 0
    if args.baseline_model is not None:
        from codebackdoor.leaderboard import victims

        deltas = victims.compare_victims(_rows(Path(args.leaderboard)), args.baseline_model)
        print(victims.report(deltas, args.format))
        return 0

    published = read_published(Path(args.against))
    print(report(compare(published, _rows(Path(args.leaderboard))), args.format))
    return 0


def _published_for_page(against: str | None) -> list[dict[str, Any]]:
    """The published rows the page marks beside the local ones: --against, or the default file
    where it exists; 'none' leaves them out."""
    from codebackdoor.leaderboard.published import read_published

    if against == "none" or (against is None and not DEFAULT_PUBLISHED.exists()):
        return []
    return read_published(Path(against or DEFAULT_PUBLISHED))


def cmd_html(args: argparse.Namespace) -> int:
    from codebackdoor.io import atomic_write_text
    from codebackdoor.leaderboard.html import page

    rows = _rows(Path(args.leaderboard))
    pairs = None
    if args.baseline is not None:
        from codebackdoor.leaderboard.paired import compare_baseline

        pairs = compare_baseline(rows, args.baseline, Path(args.leaderboard))
    atomic_write_text(Path(args.out), page(rows, str(args.leaderboard),
                                           _published_for_page(args.against), pairs=pairs))
    print(args.out)
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    from codebackdoor.errors import UserError
    from codebackdoor.io import atomic_write_text
    from codebackdoor.leaderboard.html import plots

    rows = _selected_rows(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the SVG files")
    out.mkdir(parents=True, exist_ok=True)
    for plot in plots(rows):
        path = out / f"{args.prefix}{plot.name}.svg"
        atomic_write_text(path, plot.svg + "\n")
        print(path)
    return 0


def add_leaderboard_command(commands: Any) -> None:
    """Add ``leaderboard`` and its actions to the ``commands`` subparsers of the main parser."""
    leaderboard = commands.add_parser(
        "leaderboard", help="merge results, show them, compare with published numbers, HTML",
        description="One row per cell (task, dataset, model, training, attack, rate, defense, "
        "metric definitions); seeds aggregate as mean ± std with n. See docs/leaderboard.md.",
    )
    actions = leaderboard.add_subparsers(dest="leaderboard_command", metavar="ACTION",
                                         required=True)

    def board_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--leaderboard", default=str(DEFAULT_LEADERBOARD),
                            help=f"leaderboard file (default {DEFAULT_LEADERBOARD})")

    def filter_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", help="only this task")
        parser.add_argument("--attack", help="only this attack, by name (all its variants) or "
                            "label ('none' for clean runs)")
        parser.add_argument("--defense", help="only this defense ('none' for no defense)")

    build = actions.add_parser(
        "build", help="merge result files into the leaderboard (idempotent, safe in parallel)")
    build.add_argument("results", nargs="+", metavar="RESULTS",
                       help="result.json files or directories searched for them")
    build.add_argument("--out", default=str(DEFAULT_LEADERBOARD),
                       help=f"leaderboard file to merge into (default {DEFAULT_LEADERBOARD})")
    build.set_defaults(func=cmd_build)

    show = actions.add_parser("show", help="print the leaderboard")
    board_argument(show)
    filter_arguments(show)
    show.add_argument("--sort", choices=SORTS,
                      help="best first: lowest ASR, or highest clean metric")
    show.add_argument("--format", choices=FORMATS, default="table")
    show.add_argument("--cost", action="store_true",
                      help="add what the runs cost: model trainings, inputs run through a "
                      "model, CPU and wall seconds (mean ± std over seeds)")
    show.set_defaults(func=cmd_show)

    comparing = actions.add_parser(
        "compare", help="published numbers beside the matching local rows, with deltas")
    board_argument(comparing)
    comparing.add_argument("--against", default=str(DEFAULT_PUBLISHED),
                           help=f"published numbers (default {DEFAULT_PUBLISHED})")
    comparing.add_argument(
        "--baseline", metavar="DEFENSE",
        help="instead of published numbers: each row against the row of this defense ('none': "
        "plain training) with the same task, data, model, training, attack and rate, seed by "
        "seed and item by item from the saved predictions; ΔASR and Δclean with 95%% intervals "
        "and a verdict (docs/statistics.md)")
    comparing.add_argument(
        "--baseline-model", metavar="MODEL",
        help="instead of published numbers: each row against the row of this model (as "
        "'leaderboard show' names it, e.g. tiny-t5) with the same task, data, training, attack, "
        "rate and defenses; the difference of the seed means with Welch's 95%% t-interval and "
        "a verdict, per metric (docs/statistics.md)")
    comparing.add_argument("--format", choices=FORMATS, default="table")
    comparing.set_defaults(func=cmd_compare)

    html = actions.add_parser("html", help="write a self-contained HTML page")
    board_argument(html)
    html.add_argument("--out", default=str(DEFAULT_HTML), help=f"page (default {DEFAULT_HTML})")
    html.add_argument("--baseline", metavar="DEFENSE",
                      help="add the paired comparisons against this defense (as compare "
                      "--baseline)")
    html.add_argument("--against", help=f"published numbers to mark beside the local rows "
                      f"(default {DEFAULT_PUBLISHED} where it exists; 'none' for none)")
    html.set_defaults(func=cmd_html)

    charts = actions.add_parser(
        "plots", help="write the page's plots as standalone SVG files (for a README or paper)")
    board_argument(charts)
    charts.add_argument("--out", required=True, help="directory for the SVG files")
    charts.add_argument("--prefix", default="", help="prepended to every file name")
    filter_arguments(charts)
    charts.set_defaults(func=cmd_plots)
