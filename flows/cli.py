"""`tp`: a thin command line over the flows, generated from their specs.

Every stage command parses its options into the stage's spec (`tasks/specs.py`), runs the
flow's `check` before any service starts (bad input: one sentence, exit 2, nothing
written), then calls the flow with that same spec. A `UserError` anywhere is exit 2 with its
sentence; anything else is a bug and shows its traceback (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import typing
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.options import add_options, spec_options, spec_values

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A checkpoint is a few MB: MLflow's download bars only crowd the one line a command prints.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

EXIT_USAGE = 2
# bench/NAME.py
BENCHMARKS = ("generate", "tracks", "model", "features", "online", "score", "families")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `tp info --json | head`
EXIT_SIGNAL = 128  # + the signal's number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: unwinds like Ctrl-C (flow cancelled, cluster and server stopped)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _signal_number(exc: BaseException) -> int | None:
    """The signal behind an interrupt: ours, Ctrl-C's, or Prefect's `TerminationSignal` (its
    own SIGTERM handler inside a flow run); None for anything else. Prefect is not imported
    here: the CLI chooses its API before anything imports Prefect."""
    if isinstance(exc, Interrupted):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    if type(exc).__name__ == "TerminationSignal":
        return int(getattr(exc, "signal", signal.SIGTERM))
    return None


def _interrupt(signum: int, frame: Any) -> None:
    # Once is enough: a second signal while the cluster and server shut down is ignored,
    # so cleanup finishes and finished chunks stay valid.
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signum)


@dataclass(frozen=True)
class Command:
    """A stage command: its spec, its flow (`module:function`) and how to show the result."""

    name: str
    help: str
    spec: str  # class name in tasks.specs
    flow: str
    cluster: tuple[str, ...] | None = None  # modules Dask workers import; None: no cluster
    table: bool = False  # the result is a report: print its table unless --json
    skip: tuple[str, ...] = ()  # spec fields that are not options (derived from the store)
    positional: str | None = None  # a spec field given as the command's argument(s)
    writes_store: bool = False  # takes the store's lock; the store must be writable
    # `module:function` doing the flow's work without Prefect, used when no Prefect API is
    # configured and the flow module's `needs_prefect(spec)` is false (no temporary server)
    in_process: str | None = None


COMMANDS = (
    Command(
        "generate",
        "simulate the dataset into a store (then extract tracks)",
        "GenerateSpec",
        "flows.generate_data:generate_data",
        cluster=("tasks.generate", "tasks.tracks"),
        writes_store=True,
    ),
    Command(
        "tracks",
        "extract tracks from a store's videos (detection + tracking)",
        "TracksSpec",
        "flows.extract_tracks:extract_tracks",
        cluster=("tasks.tracks",),
        writes_store=True,
    ),
    Command(
        "train",
        "train the persistence model, register it in MLflow",
        "TrainSpec",
        "flows.train:train",
        skip=("model.frame_size", "model.extractor_options"),
    ),
    Command(
        "evaluate",
        "a registered model beside every classical baseline",
        "EvaluateSpec",
        "flows.evaluate:evaluate",
        table=True,
    ),
    Command(
        "train-tokenizer",
        "train the MagVit tokenizer on the train videos",
        "TokenizerSpec",
        "flows.train_tokenizer:train_tokenizer",
    ),
    Command(
        "cache-features",
        "encode every video into the store's feature cache",
        "FeaturesSpec",
        "flows.cache_features:cache_features",
        writes_store=True,
    ),
    Command(
        "import-tracks",
        "tracker files (MOTChallenge or CSV, optional ground truth) into a store",
        "ImportSpec",
        "flows.import_tracks:import_tracks",
        positional="files",
        writes_store=True,
    ),
    Command(
        "simulate-tracker",
        "Stone Soup sequences (simulator + tracker) as tracker files with ground truth",
        "SimulateTrackerSpec",
        "flows.simulate_tracker:simulate_tracker",
        cluster=("tasks.simulate_tracker",),
    ),
    Command(
        "score",
        "score every row of tracker files (MOTChallenge or CSV) with a registered model",
        "ScoreSpec",
        "flows.score:score",
        positional="files",
        in_process="flows.score:score_in_process",
    ),
    Command(
        "retrain",
        "train a challenger; it becomes @champion only if it passes the gate",
        "RetrainSpec",
        "flows.retrain:retrain",
        # Each challenger's family comes from --families.
        skip=("train.model.frame_size", "train.model.extractor_options", "train.family"),
    ),
    Command(
        "promote",
        "make a model version @champion by hand, compared and recorded like retrain",
        "PromoteSpec",
        "flows.promote:promote",
        positional="version",
    ),
    Command(
        "pipeline",
        "generate -> tracks -> train -> evaluate, as one flow run",
        "PipelineSpec",
        "flows.pipeline:pipeline",
        writes_store=True,
    ),
)


def _spec_class(command: Command) -> Any:
    return getattr(importlib.import_module("tasks.specs"), command.spec)


def _function(path: str) -> Callable[..., Any]:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def run_stage(command: Command, args: argparse.Namespace) -> int:
    from flows.local_services import configured_api_url, local_services, reserve_prefect_api
    from flows.preflight import preflight, store_of
    from tasks.specs import parse  # imports no Prefect

    spec = parse(_spec_class(command), spec_values(args))
    if command.in_process and not configured_api_url():
        flow_module = importlib.import_module(command.flow.split(":")[0])  # no Prefect either
        if not flow_module.needs_prefect(spec):
            preflight(spec, command.writes_store)
            result = _function(command.in_process)(spec)  # runs the flow's own `check`
            _show(command, spec, result, args)
            return 0
    server = reserve_prefect_api()  # before anything imports Prefect
    from storage.chunked import one_check_per_command
    from storage.lock import store_lock

    preflight(spec, command.writes_store)
    module = command.flow.split(":")[0]
    check = getattr(importlib.import_module(module), "check", None)
    workers = None
    if command.cluster is not None and not spec.compute.dask_address:
        workers = spec.compute.n_workers()
    with ExitStack() as stack:
        stack.enter_context(one_check_per_command())
        if command.writes_store:
            stack.enter_context(store_lock(store_of(spec), command.name))
        if check is not None and isinstance(checked := check(spec), type(spec)):
            spec = checked  # e.g. a model alias pinned to the version that was checked
        address = stack.enter_context(local_services(server, workers, command.cluster or ()))
        if address is not None:
            compute = spec.compute.model_copy(update={"dask_address": address})
            spec = spec.model_copy(update={"compute": compute})
        result = _function(command.flow)(spec)
    _show(command, spec, result, args)
    return 0


def _show(command: Command, spec: Any, result: dict[str, Any], args: argparse.Namespace) -> None:
    from tp_models.evaluation.report import format_table

    if command.name == "pipeline":
        print(format_table(result["report"]))
        print(
            f"\nstore {result['store']} ({result['videos']} videos, fingerprint "
            f"{result['fingerprint']}); model {result['model_uri']} ({result['features']}) "
            f"trained in {result['train_seconds']} s; report in {result['report_dir']}"
        )
        from storage.mlflow_store import tracking_uri

        print(f"compare runs:  mlflow ui --backend-store-uri {tracking_uri()}")
    elif command.table and not args.json:
        print(format_table(result))
        print(f"report and figures: {spec.out}")
    else:
        _print_json(result)


# ---- commands without a flow ----------------------------------------------------------------


def cmd_evaluate_baselines(args: argparse.Namespace) -> int:
    from flows.preflight import check_output_folders
    from storage.store import Store
    from storage.track_reader import TrackSource
    from tasks.evaluate import evaluate_scorers
    from tasks.specs import BaselinesSpec, parse
    from tp_models.evaluation.report import format_table
    from tp_models.scorers.roster import classical_baselines

    spec = parse(BaselinesSpec, spec_values(args))
    check_output_folders(spec)
    source = TrackSource.open(Store.open(spec.store), spec.tracks)
    result = evaluate_scorers(
        source, classical_baselines(source.knows_operating_points), spec.split_seed, spec.out
    )
    if args.json:
        _print_json(result.report)
    else:
        print(format_table(result.report))
        for path in result.files:
            print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Saved report.json files as tables: any section (test, heldout), any metrics. Several
    reports of one evaluation (e.g. one per training seed) print as mean ± sd."""
    from storage.errors import UserError
    from tp_models.evaluation.report import (
        TABLE_METRICS,
        aggregate_reports,
        format_operating_point,
        format_table,
    )

    reports, fingerprints = [], set()
    for path in args.paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"report: cannot read {path!r} ({exc}); give a report.json.") from None
        fingerprints.add(json.dumps(report.get("data", {}).get("fingerprint")))
        if args.section != "test":
            if args.section not in report:
                raise UserError(f"report: {path!r} has no {args.section!r} section.")
            report = report[args.section]
        reports.append(report)
    if len(fingerprints) > 1:
        raise UserError(
            f"report: {args.paths[0]!r} and the others were not scored on the same test "
            "split (their data fingerprints differ); give reports of one store's evaluation."
        )
    report = reports[0] if len(reports) == 1 else aggregate_reports(reports)
    unknown = [m for m in args.metrics if m not in TABLE_METRICS]
    if unknown:
        raise UserError(f"report: unknown metric {unknown[0]!r}; use {', '.join(TABLE_METRICS)}.")
    print(format_table(report, args.metrics))
    print()
    print(format_operating_point(report))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from storage.inspect import describe, format_info
    from storage.paths import check_remote, is_local

    if not is_local(args.store):
        check_remote(args.store, "store", writable=False)

    info = describe(args.store, verify=args.verify)
    if args.json:
        _print_json(info)
    else:
        print(format_info(info))
    return 1 if info.get("damaged_groups") else 0


def cmd_preview(args: argparse.Namespace) -> int:
    from tasks.preview import write_preview

    for path in write_preview(args.store, args.out, videos_per_type=args.videos):
        print(path)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    # Benchmarks run `tp` subprocesses, each with its own services.
    return int(importlib.import_module(f"bench.{args.name}").main(args.rest) or 0)


# ---- wiring -----------------------------------------------------------------------------------


def _add_spec_arguments(parser: argparse.ArgumentParser, command: Command) -> None:
    spec = _spec_class(command)
    skip = command.skip + ((command.positional,) if command.positional else ())
    add_options(parser, spec_options(spec, skip))
    if command.positional:  # pydantic converts the text to the field's type
        field = spec.model_fields[command.positional]
        many = typing.get_origin(field.annotation) is tuple  # FILES... (else one VERSION)
        parser.add_argument(
            f"spec:{command.positional}",  # the dest spec_values reads
            metavar=command.positional.upper(),
            help=field.description,
            **({"nargs": "+"} if many else {}),
        )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command; with `only`, the options of that command alone (the specs import torch,
    seconds that `tp info` or `tp --help` need not pay)."""
    from storage.paths import DEFAULT_STORE

    parser = argparse.ArgumentParser(
        prog="tp", description="Track persistence pipeline: data, tracks, models, evaluation."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if command.table:
            sub.add_argument("--json", action="store_true", help="print the JSON report")
        if only in (None, command.name):
            _add_spec_arguments(sub, command)
        sub.set_defaults(run=lambda args, command=command: run_stage(command, args))

    baselines = commands.add_parser(
        "evaluate-baselines", help="classical track confirmation on the test split, by k"
    )
    baselines.add_argument("--json", action="store_true", help="print the JSON report")
    if only in (None, "evaluate-baselines"):
        from tasks.specs import BaselinesSpec

        add_options(baselines, spec_options(BaselinesSpec))
    baselines.set_defaults(run=cmd_evaluate_baselines)

    report = commands.add_parser("report", help="saved report.json files as tables")
    report.add_argument(
        "paths",
        nargs="+",
        metavar="path",
        help="report.json written by evaluate, pipeline or evaluate-baselines; several "
        "(e.g. one per training seed) print as mean ± sd",
    )
    report.add_argument("--section", default="test", help="test (default) or heldout")
    report.add_argument(
        "--metrics",
        nargs="+",
        default=["f1", "roc_auc", "p_d_at_fcr_0.01"],
        help="tables to print: f1 roc_auc p_d_at_fcr_0.01 p_d_at_fcr_0.001 ece",
    )
    report.set_defaults(run=cmd_report)

    info = commands.add_parser("info", help="describe a store")
    info.add_argument("--store", default=DEFAULT_STORE, help=f"(default: {DEFAULT_STORE})")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--verify", action="store_true", help="re-check every chunk's checksum")
    info.set_defaults(run=cmd_info)

    preview = commands.add_parser("preview", help="contact sheets and GIFs of a store")
    preview.add_argument("--store", default=DEFAULT_STORE, help=f"(default: {DEFAULT_STORE})")
    preview.add_argument("--out", required=True, help="folder for the PNG and GIF files")
    preview.add_argument("--videos", type=int, default=6, help="videos per type (default: 6)")
    preview.set_defaults(run=cmd_preview)

    bench = commands.add_parser("bench", help=f"benchmarks: {', '.join(BENCHMARKS)}")
    bench.add_argument("name", choices=BENCHMARKS)
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of that benchmark")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from storage.errors import UserError, UserErrorsOnce

    argv = sys.argv[1:] if argv is None else list(argv)
    only = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(only).parse_args(argv)
    from flows.progress import show_progress_bars

    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, _interrupt)
    quiet = UserErrorsOnce()
    quiet.install()
    try:
        with show_progress_bars():
            return int(args.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, and let Python's exit-time
        # flush of stdout go to /dev/null instead of raising a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except BaseException as exc:  # noqa: BLE001 - only signals are handled, the rest re-raised
        signum = _signal_number(exc)
        if signum is None:
            raise
        print(interrupt_line(args.command, signum), file=sys.stderr)
        return EXIT_SIGNAL + int(signum)
    finally:
        quiet.uninstall()


def interrupt_line(command: str, signum: int) -> str:
    """What an interrupted command leaves behind, in one line."""
    name = signal.Signals(signum).name
    if command == "score":  # no chunks: the scored files are moved into place all at once
        return f"interrupted by {name}: no scored file is left half-written; re-run the command"
    return f"interrupted by {name}: finished chunks are kept; re-run the same command to resume"


if __name__ == "__main__":
    sys.exit(main())
