"""`kerasserve predict`, `features`, `teach`, `models --url`: the SDK on the command line.

Exit codes: 0 done, 1 the server answered an error (for any image), 2 bad usage or an unreadable
file, 3 the server could not be reached (or did not answer in time), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from kerasserve.schemas import FeaturesResponse, PredictResponse
from kerasserve_client import _features_out, _jsonl
from kerasserve_client._base import DEFAULT_TIMEOUT, DEFAULT_TOP_K, DEFAULT_URL
from kerasserve_client._bulk import ImageOutcome
from kerasserve_client._progress import ProgressDisplay
from kerasserve_client._render import features_text, models_table, predict_tables
from kerasserve_client._sync import Client
from kerasserve_client._uploads import ImageInput
from kerasserve_client.errors import KerasServeError, TransportError
from kerasserve_client.retry import DEFAULT_RETRY, Retry

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

Subparsers = argparse._SubParsersAction  # argparse has no public name for it
ClientFactory = Callable[..., Client]
Command = Callable[[argparse.Namespace], int]

BULK_EPILOG = """\
Folders are walked for images (.jpg .png .webp ...), hidden files skipped. With --jsonl, each
image's answer or error is appended to the file as one JSON line as soon as it arrives, a progress
line goes to stderr, and files the file already has a line for are skipped: run the same command
again to finish an interrupted job (--redo-errors also retries the images that failed)."""


def add_client_commands(
    subparsers: Subparsers[argparse.ArgumentParser], *, client_factory: ClientFactory = Client
) -> None:
    """Register `predict`, `features` and `models --url` on the `kerasserve` command.

    `client_factory(url, api_key=, timeout=, retry=)` builds the client (tests give it a
    transport). A `models` command already registered (the server's: what Keras can serve) keeps
    doing that, and gains `--url` to list what a running server serves instead.
    """
    predict = subparsers.add_parser(
        "predict",
        help="classify images or folders of images with a running server",
        description="Upload images to a kerasserve server and print its top classes, or write "
        "them to a JSON Lines file (--jsonl).",
        epilog=BULK_EPILOG + "\n\n" + (__doc__.split("\n", 2)[2] if __doc__ else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders ('-': stdin)"
    )
    _model_argument(predict)
    predict.add_argument(
        "--top-k",
        type=int,
        default=None,
        help=f"classes per image (default: the server's, {DEFAULT_TOP_K}, as in the SDK)",
    )
    predict.add_argument("--lang", default=None, help="labels' language, e.g. en or zh-CN")
    predict.add_argument(
        "--jsonl", type=Path, default=None, metavar="OUT", help="append one JSON line per image"
    )
    predict.add_argument(
        "--concurrency", type=_positive, default=4, help="requests in flight (default 4)"
    )
    predict.add_argument(
        "--per-request", type=_positive, default=1, help="images per request (default 1)"
    )
    predict.add_argument(
        "--redo-errors",
        action="store_true",
        help="with --jsonl: predict again the files whose last line is an error",
    )
    _common_arguments(predict, default_url=_default_url())
    predict.set_defaults(func=partial(run_predict, make_client=client_factory))

    features = subparsers.add_parser(
        "features",
        help="extract feature vectors with a running server",
        description="Upload images and print the feature vector the model computes for each, or "
        "write them all to a JSON Lines file (--jsonl) or a numpy array (--npy).",
        epilog="With --jsonl or --npy, files already written are skipped: run the same command "
        "again (from any folder) to finish an interrupted job.",
    )
    features.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders ('-': stdin)"
    )
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
    out = features.add_mutually_exclusive_group()
    out.add_argument(
        "--jsonl", type=Path, default=None, metavar="OUT", help="append one JSON line per image"
    )
    out.add_argument(
        "--npy",
        type=Path,
        default=None,
        metavar="OUT",
        help="write the vectors as one float32 array (needs numpy); row i's file is line i of "
        "OUT.files",
    )
    features.add_argument(
        "--concurrency", type=_positive, default=4, help="requests in flight (default 4)"
    )
    features.add_argument(
        "--redo-errors",
        action="store_true",
        help="with --jsonl: extract again the files whose last line is an error",
    )
    _common_arguments(features, default_url=_default_url())
    features.set_defaults(func=partial(run_features, make_client=client_factory))

    teach = subparsers.add_parser(
        "teach",
        help="teach a running server a classifier from folders of photos, one per label",
        description="Post DATA_DIR/<label>/* photos to a kerasserve server, which fits a "
        "classifier on its base model's embeddings and serves it as NAME at once (an admin "
        "route: pass the server's admin key with --api-key).",
        epilog="Prints the leave-one-out accuracy per label; then `kerasserve predict PHOTO "
        "--model NAME` answers with your labels.",
    )
    teach.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="one folder per label")
    teach.add_argument("--name", required=True, help="the classifier's model name")
    teach.add_argument(
        "--base", default=None, help="keras.applications base (default: the server's choice)"
    )
    _common_arguments(teach, default_url=_default_url())
    teach.set_defaults(func=partial(run_teach, make_client=client_factory))

    local = subparsers.choices.get("models")
    if local is None:
        models = subparsers.add_parser(
            "models",
            help="list the models a running server serves",
            description="List the models a kerasserve server serves, their versions and state.",
        )
        _common_arguments(models, default_url=_default_url())
        models.set_defaults(func=partial(run_models, make_client=client_factory))
    else:
        # The server's `models` lists what Keras can serve without asking anyone; --url asks a
        # server instead. No default URL there: without --url it stays the local listing.
        _common_arguments(local, default_url=None, json=False)
        local.epilog = "With --url: the models a running server serves, their versions and state."
        local.set_defaults(
            func=partial(run_models, make_client=client_factory, local=local.get_default("func"))
        )


def _default_url() -> str:
    return os.environ.get("KERASSERVE_URL", DEFAULT_URL)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model name (default: the server's default)")


def _common_arguments(
    parser: argparse.ArgumentParser, *, default_url: str | None, json: bool = True
) -> None:
    where = f"$KERASSERVE_URL or {DEFAULT_URL}" if default_url else "none: list what Keras offers"
    parser.add_argument("--url", default=default_url, help=f"server address (default {where})")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("KERASSERVE_API_KEY"),
        help="API key, if the server wants one (default $KERASSERVE_API_KEY)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRY.max_retries,
        help="retries when overloaded, unreachable or dropped mid-request "
        f"(default {DEFAULT_RETRY.max_retries}, as in the SDK)",
    )
    if json:
        parser.add_argument("--json", action="store_true", help="print the server's JSON answer")


def _client(args: argparse.Namespace, make_client: ClientFactory) -> Client:
    retry = Retry(max_retries=max(args.retries, 0))
    return make_client(args.url, api_key=args.api_key, timeout=args.timeout, retry=retry)


def run_predict(args: argparse.Namespace, make_client: ClientFactory = Client) -> int:
    if args.jsonl is not None:
        return _guard(partial(_bulk_predict, args, make_client))
    return _guard(partial(_predict_tables, args, make_client))


def _predict_tables(args: argparse.Namespace, make_client: ClientFactory) -> int:
    images = _read_inputs(args.images)
    with _client(args, make_client) as client:
        outcomes = sorted(
            client.predict_iter(
                images,
                model=args.model,
                top_k=args.top_k,
                lang=args.lang,
                per_request=args.per_request,
                concurrency=args.concurrency,
            ),
            key=lambda outcome: outcome.index,
        )
    answered = [(o, o.result, o.model) for o in outcomes if o.result and o.model]
    if args.json and answered:
        first, _, model = answered[0]
        one_request = len({o.request_id for o, _, _ in answered}) == 1
        response = PredictResponse(
            model=model,
            results=[result for _, result, _ in answered],
            request_id=first.request_id if one_request else None,
        )
        print(response.model_dump_json(indent=2))
    elif answered:
        print(predict_tables(outcomes))
    for outcome in outcomes:
        if outcome.error is not None:
            _error(f"{_name(images, outcome)}: {outcome.error}")
    return EXIT_API_ERROR if len(answered) < len(outcomes) else EXIT_OK


def _name(images: Sequence[ImageInput], outcome: ImageOutcome) -> str:
    image = images[outcome.index]
    return image if isinstance(image, str) else "stdin"


def _bulk_predict(args: argparse.Namespace, make_client: ClientFactory) -> int:
    if "-" in args.images:
        return _fail("--jsonl reads files and folders, not stdin ('-')", EXIT_USAGE)
    out: Path = args.jsonl
    files = _jsonl.expand(args.images)
    if not files:
        return _fail(f"no images in {', '.join(args.images)}", EXIT_USAGE)
    done = _jsonl.done_files(out, redo_errors=args.redo_errors)
    todo = [file for file in files if _jsonl.key(file) not in done]
    skipped = len(files) - len(todo)
    started = time.monotonic()
    written = failed = 0
    finished = False
    display = ProgressDisplay(sys.stderr)
    try:
        if todo:
            with _client(args, make_client) as client, _jsonl.JsonlWriter.append_to(out) as sink:
                outcomes = client.predict_iter(
                    todo,
                    model=args.model,
                    top_k=args.top_k,
                    lang=args.lang,
                    per_request=args.per_request,
                    concurrency=args.concurrency,
                    on_progress=display,
                )
                for outcome in outcomes:
                    sink.write(_jsonl.record(todo[outcome.index], outcome))
                    written += 1
                    failed += not outcome.ok
        finished = True
    finally:
        # Also when stopped (server gone, Ctrl-C): what was written is kept, and said.
        display.close()
        elapsed = time.monotonic() - started
        _summary(written, failed, skipped, out, elapsed, stopped=not finished)
    return EXIT_API_ERROR if failed else EXIT_OK


def _summary(
    written: int,
    failed: int,
    skipped: int,
    out: Path,
    elapsed: float,
    *,
    stopped: bool,
) -> None:
    rate = f", {written / elapsed:.1f} images/s" if written and elapsed > 0 else ""
    parts = [f"{written} written to {out} ({written - failed} ok, {failed} failed)"]
    if skipped:
        parts.append(f"{skipped} skipped (already in {out.name})")
    tail = " before stopping" if stopped else ""
    print(f"kerasserve: {'; '.join(parts)}; {elapsed:.1f} s{rate}{tail}", file=sys.stderr)


def run_features(args: argparse.Namespace, make_client: ClientFactory = Client) -> int:
    if args.jsonl is not None or args.npy is not None:
        return _guard(partial(_bulk_features, args, make_client))

    def call() -> int:
        images = _read_inputs(args.images)
        with _client(args, make_client) as client:
            answers = [
                client.features(image, model=args.model, layer=args.layer, pooling=args.pooling)
                for image in images
            ]
        if args.json:
            print(_list_json(answers))
        else:
            print("\n".join(features_text(answer, args.show) for answer in answers))
        return EXIT_OK

    return _guard(call)


def run_teach(args: argparse.Namespace, make_client: ClientFactory = Client) -> int:
    def call() -> int:
        examples = label_folders(args.data_dir)
        total = sum(len(files) for files in examples.values())
        print(
            f"kerasserve: teaching {args.name!r} {total} photos of {len(examples)} labels...",
            file=sys.stderr,
        )
        with _client(args, make_client) as client:
            taught = client.teach(args.name, examples, base=args.base)
        if args.json:
            print(taught.model_dump_json(indent=2))
            return EXIT_OK
        print(
            f"{taught.name} version {taught.version} on {taught.base} ({taught.head} head): "
            f"leave-one-out accuracy {taught.accuracy:.1%} over {taught.examples} photos, "
            f"{taught.timing.total_s:.1f} s"
        )
        width = max(len(c.label) for c in taught.classes)
        for c in taught.classes:
            print(f"  {c.label:<{width}}  {c.examples:>4} photos  {c.loo_accuracy:>7.1%}")
        print(f"classify with: kerasserve predict PHOTO --model {taught.name} --url {args.url}")
        return EXIT_OK

    return _guard(call)


def label_folders(data_dir: Path) -> dict[str, list[str]]:
    """{label: photos} from DATA_DIR/<label>/* (hidden folders and non-images skipped)."""
    if not data_dir.is_dir():
        raise OSError(2, "no such folder", str(data_dir))
    examples = {
        folder.name: _jsonl.expand([str(folder)])
        for folder in sorted(data_dir.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }
    empty = [label for label, files in examples.items() if not files]
    if empty:
        raise ValueError(f"no photos in {', '.join(str(data_dir / e) for e in empty)}")
    if len(examples) < 2:
        raise ValueError(
            f"{data_dir} needs one folder per label, at least 2 (e.g. {data_dir}/cat/*.jpg and "
            f"{data_dir}/dog/*.jpg); found {sorted(examples) or 'none'}"
        )
    return examples


def _bulk_features(args: argparse.Namespace, make_client: ClientFactory) -> int:
    if "-" in args.images:
        return _fail("--jsonl and --npy read files and folders, not stdin ('-')", EXIT_USAGE)
    files = _jsonl.expand(args.images)
    if not files:
        return _fail(f"no images in {', '.join(args.images)}", EXIT_USAGE)
    out: Path = args.jsonl if args.jsonl is not None else args.npy
    sink = (
        _features_out.JsonlSink(out, redo_errors=args.redo_errors)
        if args.jsonl is not None
        else _features_out.NpySink(out)
    )
    todo = [file for file in files if _jsonl.key(file) not in sink.done]
    skipped = len(files) - len(todo)
    started = time.monotonic()
    written = failed = 0
    finished = False
    try:
        if todo:
            with _client(args, make_client) as client, sink:
                outcomes = client.features_iter(
                    todo,
                    model=args.model,
                    layer=args.layer,
                    pooling=args.pooling,
                    concurrency=args.concurrency,
                )
                for outcome in outcomes:
                    sink.add(todo[outcome.index], outcome)
                    written += 1
                    if not outcome.ok:
                        failed += 1
                        _error(f"{todo[outcome.index]}: {outcome.error}")
        finished = True
    finally:
        _summary(written, failed, skipped, out, time.monotonic() - started, stopped=not finished)
    return EXIT_API_ERROR if failed else EXIT_OK


def run_models(
    args: argparse.Namespace, make_client: ClientFactory = Client, local: Command | None = None
) -> int:
    if args.url is None and local is not None:
        return _local_models(args, local)

    def call() -> int:
        with _client(args, make_client) as client:
            models = client.models()
        print(models.model_dump_json(indent=2) if args.json else models_table(models, args.url))
        return EXIT_OK

    return _guard(call)


def _local_models(args: argparse.Namespace, local: Command) -> int:
    try:
        return local(args)
    except ImportError as exc:
        return _fail(
            f"listing the models Keras can serve needs the server: pip install 'kerasserve[server]' "
            f"({exc}); to list what a running server serves, pass --url",
            EXIT_USAGE,
        )


def _guard(command: Callable[[], int]) -> int:
    """Run a command, turning the errors users cause or meet into a message and an exit code."""
    try:
        return command()
    except OSError as exc:  # an input file
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", EXIT_USAGE)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return _fail(
            f"{exc}\n  is it running? Start one with `kerasserve serve`, or point --url at it",
            EXIT_UNREACHABLE,
        )
    except KerasServeError as exc:
        return _fail(str(exc), EXIT_API_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _read_inputs(names: Sequence[str]) -> list[ImageInput]:
    """Files (folders walked for images), checked before anything is sent; '-' reads stdin."""
    images: list[ImageInput] = []
    for name in names:
        if name == "-":
            images.append(sys.stdin.buffer.read())
        else:
            images += _jsonl.expand([name])
    if not images:
        raise ValueError(f"no images in {', '.join(names)}")
    return images


def _fail(message: str, code: int) -> int:
    _error(message)
    return code


def _error(message: str) -> None:
    print(f"kerasserve: error: {message}", file=sys.stderr)


def _list_json(answers: list[FeaturesResponse]) -> str:
    return "[" + ",\n".join(item.model_dump_json(indent=2) for item in answers) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    """`kerasserve predict ...` of the SDK installed alone (`python -m kerasserve_client` too)."""
    parser = argparse.ArgumentParser(prog="kerasserve", description="Talk to a kerasserve server.")
    add_client_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
