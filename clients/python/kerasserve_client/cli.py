"""`kerasserve predict` and `kerasserve features`: the SDK on the command line (no heavy imports).

Exit codes: 0 done, 1 the server answered an error, 2 bad usage or an unreadable file,
3 the server could not be reached (or did not answer in time).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from kerasserve_client._base import DEFAULT_TIMEOUT, DEFAULT_URL
from kerasserve_client._sync import Client
from kerasserve_client._uploads import ImageInput
from kerasserve_client.errors import APIError, KerasServeError, TransportError
from kerasserve_client.retry import Retry
from schemas import FeaturesResponse, PredictResponse

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

Subparsers = argparse._SubParsersAction  # argparse has no public name for it
ClientFactory = Callable[..., Client]


def add_client_commands(
    subparsers: Subparsers[argparse.ArgumentParser], *, client_factory: ClientFactory = Client
) -> None:
    """Register `predict` and `features` on the `kerasserve` command's subparsers.

    `client_factory(url, api_key=, timeout=, retry=)` builds the client (tests give it a transport).
    """
    predict = subparsers.add_parser(
        "predict",
        help="classify images with a running server",
        description="Upload images to a kerasserve server and print its top classes.",
        epilog=__doc__.split("\n", 2)[2] if __doc__ else None,
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files ('-': stdin)")
    _model_argument(predict)
    predict.add_argument("--top-k", type=int, default=3, help="classes per image (default 3)")
    _common_arguments(predict)
    predict.set_defaults(func=partial(run_predict, make_client=client_factory))

    features = subparsers.add_parser(
        "features",
        help="extract feature vectors with a running server",
        description="Upload images and print the feature vector the model computes for each.",
    )
    features.add_argument("images", nargs="+", metavar="IMAGE", help="image files ('-': stdin)")
    _model_argument(features)
    features.add_argument("--layer", default=None, help="layer name (default: the model's own)")
    features.add_argument(
        "--pooling",
        choices=["avg", "max", "none"],
        default=None,
        help="default: avg for spatial maps, none for vector layers",
    )
    features.add_argument(
        "--show", type=int, default=8, metavar="N", help="values to print per image (default 8)"
    )
    _common_arguments(features)
    features.set_defaults(func=partial(run_features, make_client=client_factory))


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model name (default: the server's default)")


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("KERASSERVE_URL", DEFAULT_URL),
        help=f"server address (default $KERASSERVE_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("KERASSERVE_API_KEY"),
        help="API key, if the server wants one (default $KERASSERVE_API_KEY)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="retries when overloaded or unreachable"
    )
    parser.add_argument("--json", action="store_true", help="print the server's JSON answer")


def run_predict(args: argparse.Namespace, make_client: ClientFactory = Client) -> int:
    def call(client: Client, images: list[ImageInput]) -> PredictResponse:
        return client.predict_many(images, model=args.model, top_k=args.top_k)

    return _run(args, make_client, call, _predict_table)


def run_features(args: argparse.Namespace, make_client: ClientFactory = Client) -> int:
    def call(client: Client, images: list[ImageInput]) -> list[FeaturesResponse]:
        return [
            client.features(image, model=args.model, layer=args.layer, pooling=args.pooling)
            for image in images
        ]

    def show(answers: list[FeaturesResponse]) -> str:
        return "\n".join(_features_text(answer, args.show) for answer in answers)

    return _run(args, make_client, call, show)


def _run(
    args: argparse.Namespace,
    make_client: ClientFactory,
    call: Callable[[Client, list[ImageInput]], Any],
    table: Callable[[Any], str],
) -> int:
    try:
        images = _read_inputs(args.images)
        retry = Retry(max_retries=max(args.retries, 0))
        client = make_client(args.url, api_key=args.api_key, timeout=args.timeout, retry=retry)
        with client:
            answer = call(client, images)
    except OSError as exc:  # an input file
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", EXIT_USAGE)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return _fail(
            f"{exc}\n  is it running? Start one with `kerasserve serve`, or point --url at it",
            EXIT_UNREACHABLE,
        )
    except APIError as exc:
        return _fail(str(exc), EXIT_API_ERROR)
    except KerasServeError as exc:
        return _fail(str(exc), EXIT_API_ERROR)
    if args.json:
        print(_to_json(answer))
    else:
        print(table(answer))
    return EXIT_OK


def _read_inputs(names: Sequence[str]) -> list[ImageInput]:
    """Paths, checked before anything is sent; '-' reads the image from stdin."""
    images: list[ImageInput] = []
    for name in names:
        if name == "-":
            images.append(sys.stdin.buffer.read())
            continue
        path = Path(name)
        if not path.is_file():
            why = "is a directory" if path.is_dir() else "no such file"
            raise OSError(2, why, name)
        images.append(path)
    return images


def _fail(message: str, code: int) -> int:
    print(f"kerasserve: error: {message}", file=sys.stderr)
    return code


def _to_json(answer: Any) -> str:
    if isinstance(answer, list):
        return "[" + ",\n".join(item.model_dump_json(indent=2) for item in answer) + "]"
    text: str = answer.model_dump_json(indent=2)
    return text


def _predict_table(answer: PredictResponse) -> str:
    model = answer.model
    lines = [
        f"model {model.name} (runtime {model.runtime.name}, weights {model.weights.kind.value})"
    ]
    if model.weights.warning:
        lines.append(f"warning: {model.weights.warning}")
    for i, result in enumerate(answer.results):
        t = result.timing
        lines += ["", f"{result.filename or f'image {i}'}"]
        width = max((len(p.label) for p in result.predictions), default=5)
        lines.append(f"  {'#':>2}  {'label':<{width}}  {'class':<10}  {'probability':>11}")
        lines += [
            f"  {rank:>2}  {p.label:<{width}}  {p.class_id:<10}  {p.probability:>11.2%}"
            for rank, p in enumerate(result.predictions, 1)
        ]
        decode = f", decode {t.decode_ms:.1f} ms" if t.decode_ms is not None else ""
        lines.append(
            f"  (batch of {t.batch_size}, queue {t.queue_ms:.1f} ms, "
            f"inference {t.inference_ms:.1f} ms{decode})"
        )
    return "\n".join(lines)


def _features_text(answer: FeaturesResponse, show: int) -> str:
    lines = []
    for i, result in enumerate(answer.results):
        name = result.filename or f"image {i}"
        head = f"{name}: {answer.model} layer {answer.layer}, pooling {answer.pooling}"
        lines.append(f"{head}, shape {tuple(answer.shape)}")
        vector = result.vector or []
        values = ", ".join(f"{v:.4g}" for v in vector[:show])
        more = ", ..." if len(vector) > show else ""
        norm = math.sqrt(sum(v * v for v in vector))
        lines.append(f"  [{values}{more}]  L2 norm {norm:.4g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kerasserve_client predict ...`: the client commands without the server package."""
    parser = argparse.ArgumentParser(
        prog="python -m kerasserve_client", description="Talk to a kerasserve server."
    )
    add_client_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
