"""`tp`: a thin command line over the flows. Every option maps to one flow parameter."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from flows.local_services import (
    local_services,
    prefect_ready,
    release_prefect_api,
    reserve_prefect_api,
)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

EXIT_USAGE = 2
PRELOAD = ("tasks.generate", "tasks.tracks")  # imported by Dask workers while Prefect boots


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_model_options(
    parser: argparse.ArgumentParser, model: Any, skip: Sequence[str] = ()
) -> None:
    """One option per pydantic field, named after it, with its default and description."""
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        default = field.default
        help_text = f"{field.description or ''} (default: {default})"
        if isinstance(default, bool):
            parser.add_argument(
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
            continue
        annotation = str(field.annotation)
        kind: Callable[[str], Any] = (
            int if "int" in annotation else float if "float" in annotation else str
        )
        parser.add_argument(_flag(name), dest=name, type=kind, default=default, help=help_text)


def _model_values(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    return {name: getattr(args, name) for name in model.model_fields if hasattr(args, name)}


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# ---- commands ---------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from flows.params import GenerateParams, parse
    from storage.dataset import check_dataset

    params = parse(GenerateParams, **_model_values(args, GenerateParams))
    check_dataset(params.store, params.data_config(), params.overwrite)
    with local_services(params.n_workers(), params.dask_address, PRELOAD) as address:
        from flows.generate_data import generate_data

        summary = generate_data(params.model_copy(update={"dask_address": address}))
    _print_json(summary)
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    from flows.params import TracksParams, parse
    from storage.dataset import open_dataset

    params = parse(TracksParams, **_model_values(args, TracksParams))
    open_dataset(params.store)  # a missing store is refused before anything starts
    with local_services(params.n_workers(), params.dask_address, PRELOAD) as address:
        from flows.extract_tracks import extract_tracks

        summary = extract_tracks(params.model_copy(update={"dask_address": address}))
    _print_json(summary)
    return 0


def cmd_evaluate_baselines(args: argparse.Namespace) -> int:
    from flows.params import EvaluateBaselinesParams, parse
    from storage.track_reader import TrackSource
    from tasks.evaluate import evaluate_scorers
    from tp_models.baselines import default_baselines
    from tp_models.metrics import format_table

    params = parse(EvaluateBaselinesParams, **_model_values(args, EvaluateBaselinesParams))
    source = TrackSource.open(params.store, params.tracker())
    result = evaluate_scorers(source, default_baselines(), params.split_seed, params.out)
    if args.json:
        _print_json(result.report)
    else:
        print(format_table(result.report))
        for path in result.files:
            print(f"wrote {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from flows.params import TrainParams, parse
    from storage.mlflow_store import connect
    from storage.track_reader import TrackSource

    params = parse(TrainParams, **_model_values(args, TrainParams))
    connect()
    from flows.train import tokenizer_hash

    TrackSource.open(params.store, params.tracker(), tokenizer_hash(params))
    with prefect_ready():
        from flows.train import train

        _print_json(train(params))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from flows.evaluate import check_evaluate
    from flows.params import EvaluateParams, parse
    from tp_models.metrics import format_table

    params = parse(EvaluateParams, **_model_values(args, EvaluateParams))
    check_evaluate(params)
    with prefect_ready():
        from flows.evaluate import evaluate

        report = evaluate(params)
    if args.json:
        _print_json(report)
    else:
        print(format_table(report))
        print(f"report and figures: {params.out}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from flows.params import (
        EvaluateParams,
        FeaturesParams,
        GenerateParams,
        TokenizerParams,
        TrainParams,
        parse,
    )
    from storage.dataset import check_dataset
    from storage.mlflow_store import connect, tracking_uri
    from tp_models.metrics import format_table

    generate = parse(GenerateParams, **_model_values(args, GenerateParams))
    train_params = parse(TrainParams, store=generate.store, features=args.features)
    evaluate_params = parse(EvaluateParams, store=generate.store, out=args.out)
    check_dataset(generate.store, generate.data_config(), generate.overwrite)
    connect()
    preload = PRELOAD + (("tasks.features",) if args.features != "statistical" else ())
    with local_services(generate.n_workers(), generate.dask_address, preload) as address:
        from flows.cache_features import cache_features
        from flows.evaluate import evaluate
        from flows.generate_data import generate_data
        from flows.train import train
        from flows.train_tokenizer import train_tokenizer

        data = generate_data(generate.model_copy(update={"dask_address": address}))
        if args.features != "statistical":
            tokenizer = train_tokenizer(TokenizerParams(store=generate.store))
            cache_features(
                FeaturesParams(
                    store=generate.store,
                    tokenizer_uri=tokenizer["tokenizer_uri"],
                    dask_address=address,
                )
            )
            train_params = train_params.model_copy(
                update={"tokenizer_uri": tokenizer["tokenizer_uri"]}
            )
        trained = train(train_params)
        report = evaluate(evaluate_params.model_copy(update={"model_uri": trained["model_uri"]}))
    print(format_table(report))
    print(
        f"\nstore {data['store']} ({data['videos']} videos, fingerprint {data['fingerprint']}); "
        f"model {trained['model_uri']} ({args.features}) trained in {trained['train_seconds']} s; "
        f"report in {args.out}"
    )
    print(f"compare runs:  mlflow ui --backend-store-uri {tracking_uri()}")
    return 0


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    from flows.params import TokenizerParams, parse
    from storage.dataset import open_dataset
    from storage.mlflow_store import connect
    from tp_models.magvit.tokenizer import check_num_frames

    params = parse(TokenizerParams, **_model_values(args, TokenizerParams))
    connect()
    check_num_frames(open_dataset(params.store).group["videos"].shape[1])
    with prefect_ready():
        from flows.train_tokenizer import train_tokenizer

        _print_json(train_tokenizer(params))
    return 0


def cmd_cache_features(args: argparse.Namespace) -> int:
    from flows.params import FeaturesParams, parse
    from storage.dataset import open_dataset
    from storage.errors import StoreError
    from storage.features import open_features
    from storage.mlflow_store import connect, require_model

    params = parse(FeaturesParams, **_model_values(args, FeaturesParams))
    open_dataset(params.store)
    connect()
    digest = require_model(params.tokenizer_uri).get("tokenizer.checkpoint_hash", "")
    try:
        cached = not params.overwrite and bool(open_features(params.store, digest))
    except StoreError:
        cached = False
    if cached:  # nothing to encode: no Dask cluster to start
        with prefect_ready():
            from flows.cache_features import cache_features

            _print_json(cache_features(params))
        return 0
    with local_services(params.n_workers(), params.dask_address, ("tasks.features",)) as address:
        from flows.cache_features import cache_features

        _print_json(cache_features(params.model_copy(update={"dask_address": address})))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    release_prefect_api()  # benchmarks run `tp` subprocesses, each with its own services
    return int(importlib.import_module(f"bench.{args.name}").main(args.rest) or 0)


def cmd_info(args: argparse.Namespace) -> int:
    from storage.inspect import describe, format_info

    info = describe(args.store, verify=args.verify)
    if args.json:
        _print_json(info)
    else:
        print(format_info(info))
    return 1 if info.get("corrupted_chunks") else 0


def cmd_preview(args: argparse.Namespace) -> int:
    from tasks.preview import write_preview

    for path in write_preview(args.store, args.out, videos_per_type=args.videos):
        print(path)
    return 0


# ---- wiring -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from flows.params import (
        EvaluateBaselinesParams,
        EvaluateParams,
        FeaturesParams,
        GenerateParams,
        TokenizerParams,
        TracksParams,
        TrainParams,
    )

    parser = argparse.ArgumentParser(
        prog="tp", description="Track persistence pipeline: data, tracks, models, evaluation."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="run the generate-data flow")
    _add_model_options(generate, GenerateParams)
    generate.set_defaults(run=cmd_generate)

    tracks = commands.add_parser("tracks", help="run the extract-tracks flow on a store")
    tracks.add_argument("store")
    _add_model_options(tracks, TracksParams, skip=("store",))
    tracks.set_defaults(run=cmd_tracks)

    baselines = commands.add_parser(
        "evaluate-baselines", help="classical track confirmation on the test split, by k"
    )
    baselines.add_argument("store")
    baselines.add_argument("--json", action="store_true", help="print the JSON report")
    _add_model_options(baselines, EvaluateBaselinesParams, skip=("store",))
    baselines.set_defaults(run=cmd_evaluate_baselines)

    train = commands.add_parser("train", help="run the train flow (model -> MLflow registry)")
    _add_model_options(train, TrainParams)
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="run the evaluate flow: model vs baselines")
    evaluate.add_argument("--json", action="store_true", help="print the JSON report")
    _add_model_options(evaluate, EvaluateParams)
    evaluate.set_defaults(run=cmd_evaluate)

    pipeline = commands.add_parser("pipeline", help="generate -> tracks -> train -> evaluate")
    _add_model_options(pipeline, GenerateParams)
    pipeline.add_argument("--features", default="statistical", help="statistical|magvit|hybrid")
    pipeline.add_argument("--out", default="reports/latest", help="folder for the report")
    pipeline.set_defaults(run=cmd_pipeline)

    tokenizer = commands.add_parser("train-tokenizer", help="train the MagVit tokenizer")
    _add_model_options(tokenizer, TokenizerParams)
    tokenizer.set_defaults(run=cmd_train_tokenizer)

    features = commands.add_parser("cache-features", help="encode every video into the cache")
    features.add_argument("store")
    _add_model_options(features, FeaturesParams, skip=("store",))
    features.set_defaults(run=cmd_cache_features)

    bench = commands.add_parser("bench", help="benchmarks: generate, tracks, model, features")
    bench.add_argument("name", choices=("generate", "tracks", "model", "features"))
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of that benchmark")
    bench.set_defaults(run=cmd_bench)

    info = commands.add_parser("info", help="describe a store")
    info.add_argument("store")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--verify", action="store_true", help="re-check every chunk's checksum")
    info.set_defaults(run=cmd_info)

    preview = commands.add_parser("preview", help="contact sheets and GIFs of a store")
    preview.add_argument("store")
    preview.add_argument("--out", required=True, help="folder for the PNG and GIF files")
    preview.add_argument("--videos", type=int, default=6, help="videos per type (default: 6)")
    preview.set_defaults(run=cmd_preview)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reserve_prefect_api()
    try:
        return _run(args)
    finally:
        release_prefect_api()


def _run(args: argparse.Namespace) -> int:
    from flows.progress import show_progress_bars

    try:
        with show_progress_bars():
            return int(args.run(args) or 0)
    except ValueError as exc:  # ParameterError, StoreError and the domain's own checks
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
