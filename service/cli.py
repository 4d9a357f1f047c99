"""The `kerasserve` command: serve, list models, fetch weights, and the client commands."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from kerasserve.service import __version__

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# With several workers each line says which process wrote it.
WORKERS_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d [%(request_id)s] %(message)s"


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="start the HTTP server",
        description="Serve keras.applications models over HTTP. Every flag has a "
        "KERASSERVE_<FLAG> environment variable (e.g. KERASSERVE_MAX_BATCH_SIZE).",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "--model", action="append", help="model to serve (repeatable; default MobileNetV2)"
    )
    p.add_argument("--weights", help="auto (default) | imagenet | none | PATH to a weights file")
    p.add_argument("--model-file", action="append", help="your own .keras model (repeatable)")
    p.add_argument(
        "--labels",
        action="append",
        help="labels file for each --model-file; LANG=FILE (e.g. zh-CN=labels.zh.txt) adds "
        "labels in another language",
    )
    p.add_argument(
        "--model-repository",
        help="serve a model repository: DIR/<model>/<version>/ (+ DIR/<model>/config.toml)",
    )
    p.add_argument(
        "--poll-repository-s", type=float, help="scan the repository every N s (default 0: off)"
    )
    p.add_argument(
        "--max-loaded-models",
        type=int,
        help="most model versions in memory at once (default: no limit)",
    )
    p.add_argument(
        "--output-kind",
        choices=["auto", "softmax", "logits", "binary", "multi_label"],
        help="the classifier head (default auto: read from the last layer)",
    )
    p.add_argument(
        "--preprocess", choices=["caffe", "tf", "torch", "none"], help="for --model-file"
    )
    p.add_argument(
        "--unsafe-model-files",
        action="store_true",
        help="load --model-file with safe_mode=False (lets the file run code)",
    )
    p.add_argument(
        "--runtime",
        choices=["auto", "keras", "openvino"],
        help="auto (default: the fastest that passes its check) | keras | openvino",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "int8"],
        help="auto (default: the fastest of int8, bf16 and fp32 past its accuracy gate, cached) "
        "| fp32 | bf16 (where the CPU has it) | int8 (OpenVINO quantised with NNCF); bf16 and "
        "int8 serve only past the gate",
    )
    p.add_argument(
        "--calibration-images", help="photos to calibrate INT8 on (default: built-in set)"
    )
    p.add_argument(
        "--int8-min-top1",
        type=float,
        help="INT8 gate: least top-1 agreement with FP32 Keras on held-out photos (default 0.99)",
    )
    p.add_argument(
        "--int8-min-top5",
        type=float,
        help="INT8 gate: least mean top-5 overlap with FP32 Keras (default 0.95)",
    )
    p.add_argument(
        "--runtime-tolerance", type=float, help="max probability diff from Keras (default 1e-4)"
    )
    p.add_argument(
        "--runtime-streams",
        type=int,
        help="OpenVINO streams, each running its own batch (default 0: as many as suit this "
        "CPU; 1: one stream over every core, lowest latency for a lone request)",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument(
        "--workers",
        help="worker processes behind the port, each serving every model on its share of the "
        "cores (default auto: 1 below 4 cores, else one per 2 cores)",
    )
    p.add_argument(
        "--runtime-threads",
        type=int,
        help="OpenVINO inference threads (default 0: every core; cores // workers each)",
    )
    p.add_argument("--max-batch-size", type=int, help="largest batch per model call (default 32)")
    p.add_argument("--max-wait-ms", type=float, help="longest wait for a batch to fill (default 5)")
    p.add_argument("--max-queue", type=int, help="queued images per model before 503 (default 256)")
    p.add_argument("--timeout-s", type=float, help="per-request deadline (default 30)")
    p.add_argument(
        "--calibrate-batch",
        action=argparse.BooleanOptionalAction,
        help="measure each batch size at start-up and cap batches where throughput stops "
        "growing (default on)",
    )
    p.add_argument(
        "--tune-batch",
        action=argparse.BooleanOptionalAction,
        help="learn the batch size from live traffic, per bucket (default on; Keras runtime)",
    )
    p.add_argument(
        "--tf-intra-op-threads", type=int, help="TensorFlow intra-op threads (default 0: per core)"
    )
    p.add_argument(
        "--tf-inter-op-threads", type=int, help="TensorFlow inter-op threads (default 0: per core)"
    )
    p.add_argument("--max-body-mb", type=float, help="request body limit in MB (default 10)")
    p.add_argument("--max-pixels", type=int, help="decoded pixels per image (default 50M)")
    p.add_argument("--max-images", type=int, help="images per request (default 32)")
    p.add_argument(
        "--upload-timeout-s", type=float, help="time allowed to receive a body (default 30, 408)"
    )
    p.add_argument("--decode-workers", type=int, help="image decoding threads (default: cores)")
    p.add_argument("--drain-timeout-s", type=float, help="graceful shutdown bound (default 30)")
    p.add_argument("--api-key", dest="api_keys", action="append", help="require this API key")
    p.add_argument(
        "--admin-key",
        dest="admin_keys",
        action="append",
        help="key for the admin routes: load, unload, repository index, classifiers "
        "(repeatable); without one they answer 403",
    )
    p.add_argument(
        "--wechat-appid",
        help="mini-program appid: turns on POST /v1/auth/wechat (the AppSecret comes from "
        "KERASSERVE_WECHAT_SECRET only; login tokens are signed with KERASSERVE_TOKEN_SECRET)",
    )
    p.add_argument(
        "--wechat-api-base", help="jscode2session's host (default https://api.weixin.qq.com)"
    )
    p.add_argument("--token-ttl-s", type=int, help="login token lifetime in s (default 7200)")
    p.add_argument(
        "--rate-limit",
        help="predictions per caller, e.g. 30/minute: per login, per API key, else per IP",
    )
    p.add_argument(
        "--rate-limit-storage",
        help="memory:// (default, per process) or redis://HOST:PORT/DB (shared)",
    )
    p.add_argument("--cors-origin", dest="cors_origins", action="append", help="allowed origin")
    p.add_argument("--log-level", help="debug | info | warning | error")
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        help="log one line per request (default off: it costs every request)",
    )
    p.add_argument(
        "--otel",
        action=argparse.BooleanOptionalAction,
        help="FastAPI's OpenTelemetry spans, metrics and logs for the providers this process "
        "configures (default off: looking for them costs every request)",
    )
    p.set_defaults(func=_serve)


def configure_logging(level: str, *, workers: bool = False) -> None:
    from kerasserve.service.http.middleware import RequestIdFilter

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(WORKERS_LOG_FORMAT if workers else LOG_FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pydantic import ValidationError

    from kerasserve.service.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"kerasserve serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from kerasserve.service.http.auth import shared_token_secret

    settings = shared_token_secret(settings)

    from kerasserve.service.http.workers import RUNTIME_THREADS_ENV, serve_workers, worker_count

    workers = worker_count(settings)
    if workers > 1:
        configure_logging(settings.log_level, workers=True)
        return serve_workers(settings, workers)
    if settings.runtime_threads:
        os.environ[RUNTIME_THREADS_ENV] = str(settings.runtime_threads)

    import uvicorn

    from kerasserve.service.http.app import create_app
    from kerasserve.service.http.server import DrainingServer

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        lifespan="on",
    )
    server = DrainingServer(config, app)
    server.run()
    # uvicorn leaves `started` False when the lifespan (model loading) failed.
    code = 0 if server.started else 1
    _exit_now(code)
    return code  # pragma: no cover - _exit_now does not return


def _exit_now(code: int) -> None:
    """End the server's process once it has drained and shut down (every model released,
    every answer sent): the interpreter's own teardown of TensorFlow, Keras and OpenVINO took
    ~2 s of CPU after the last log line (2.3 s wall, 2 cores), for nothing a restart or a
    rolling update would keep. Logs and standard streams are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _models(args: argparse.Namespace) -> int:
    from kerasserve.service.inference import catalogue

    specs = catalogue.catalogue()
    rows = [
        (s.name, f"{s.input_size[0]}x{s.input_size[1]}", s.preprocess_mode, s.module_short)
        for s in specs.values()
    ]
    if args.json:
        import json

        print(
            json.dumps(
                [
                    {
                        "name": n,
                        "input_size": list(specs[n].input_size),
                        "preprocess": p,
                        "module": m,
                    }
                    for n, _, p, m in rows
                ],
                indent=2,
            )
        )
        return 0
    widths = [
        max(len(r[i]) for r in rows + [("model", "input", "preprocess", "module")])
        for i in range(4)
    ]
    header = ("model", "input", "preprocess", "module")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(rows)} models in keras.applications")
    return 0


def _fetch_weights(args: argparse.Namespace) -> int:
    from kerasserve.service.errors import ModelLoadError, ModelNotFound
    from kerasserve.service.inference import catalogue, weights

    failures = 0
    for name in args.models:
        try:
            spec = catalogue.spec(name)
            cache = weights.fetch(spec)
        except (ModelLoadError, ModelNotFound) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{spec.name}: ImageNet weights in {cache}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasserve", description="Serve keras.applications image models over HTTP."
    )
    parser.add_argument("--version", action="version", version=f"kerasserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    models = sub.add_parser(
        "models",
        help="list every model the installed Keras can serve (with --url: a running server's)",
    )
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_models)
    fetch = sub.add_parser(
        "fetch-weights", help="download ImageNet weights into Keras' cache (for images)"
    )
    fetch.add_argument("models", nargs="+", metavar="MODEL")
    fetch.set_defaults(func=_fetch_weights)
    from kerasserve.service.training.cli import add_train_command

    add_train_command(sub)
    try:
        from kerasserve_client.cli import add_client_commands
    except ImportError:  # the SDK ships with the package; tolerate a partial checkout
        pass
    else:
        add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
