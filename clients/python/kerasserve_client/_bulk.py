"""What `predict_iter` shares between the twins: its outcomes, progress, and which errors stop it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from itertools import islice

from kerasserve.schemas import ImageResult, ModelRef, PredictResponse
from kerasserve_client._uploads import DEFAULT_PREPARE, ImageInput, Prepare, Upload, read_upload
from kerasserve_client.errors import (
    ConnectError,
    InputError,
    InvalidImage,
    InvalidRequest,
    KerasServeError,
    ModelUnavailable,
    NotFound,
    TooLarge,
    Unauthorized,
    UnexpectedResponse,
)

Group = list[tuple[int, ImageInput]]


@dataclass(frozen=True)
class ImageOutcome:
    """One image's answer from `predict_iter`: its `result`, or its own `error`.

    `index` is the image's position in the input; `image` is what was passed for it.
    """

    index: int
    image: ImageInput = field(repr=False)
    result: ImageResult | None = None
    model: ModelRef | None = None
    """Which model (version, output kind, labels' language) answered; None on error."""
    error: KerasServeError | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> ImageResult:
        """The result, or the image's error raised."""
        if self.error is not None:
            raise self.error
        assert self.result is not None  # one of the two is always set
        return self.result


@dataclass(frozen=True)
class Progress:
    """Where a `predict_iter` run stands, handed to `on_progress` after each image.

    `total` is None when the images were an iterator of unknown length.
    """

    done: int
    failed: int
    total: int | None
    elapsed_s: float
    last: ImageOutcome

    @property
    def succeeded(self) -> int:
        return self.done - self.failed


ProgressCallback = Callable[[Progress], None]


def is_fatal(error: KerasServeError) -> bool:
    """Whether an error concerns the whole run rather than one image, so the run stops.

    A server that cannot be reached, a missing API key, an unknown or failed model or a bad
    parameter fail every image the same way; a bad image, an overload that outlasted the
    retries or a missed deadline fail only their own.
    """
    if isinstance(error, ConnectError | Unauthorized | NotFound | UnexpectedResponse):
        return True
    return isinstance(error, InvalidRequest | ModelUnavailable)


def is_image_specific(error: KerasServeError) -> bool:
    """Errors a request of several images fails with when one of them is at fault: sending the
    images one by one tells which."""
    return isinstance(error, InvalidImage | TooLarge)


class BulkRun:
    """The bookkeeping of one `predict_iter` run: grouping, reading, counting, reporting.

    The twins own the scheduling (threads or tasks); progress is reported from the consumer's
    side of the iterator, so `on_progress` never runs concurrently with itself.
    """

    def __init__(
        self,
        images: Iterable[ImageInput],
        *,
        per_request: int,
        concurrency: int,
        on_progress: ProgressCallback | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_request < 1:
            raise ValueError(f"per_request must be >= 1, got {per_request}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if isinstance(images, str | bytes | bytearray | memoryview):
            raise TypeError(
                "predict_iter takes an iterable of images; for one image call predict()"
            )
        self.per_request = per_request
        self.concurrency = concurrency
        self.total = len(images) if isinstance(images, Sized) else None
        self._images = iter(enumerate(images))
        self._on_progress = on_progress
        self._clock = clock
        self._started = clock()
        self.done = 0
        self.failed = 0

    def groups(self) -> Iterator[Group]:
        """The images, numbered, `per_request` at a time, read lazily from the input."""
        while group := list(islice(self._images, self.per_request)):
            yield group

    def report(self, outcomes: list[ImageOutcome]) -> Iterator[ImageOutcome]:
        """Count each finished image and tell the progress callback, just before it is yielded."""
        for outcome in outcomes:
            self.done += 1
            self.failed += not outcome.ok
            if self._on_progress is not None:
                elapsed = self._clock() - self._started
                self._on_progress(Progress(self.done, self.failed, self.total, elapsed, outcome))
            yield outcome


def read_group(
    group: Group, prepare: Prepare = DEFAULT_PREPARE
) -> tuple[list[tuple[int, ImageInput, Upload]], list[ImageOutcome]]:
    """Read every image of a group: those that read, and outcomes for those that did not."""
    readable: list[tuple[int, ImageInput, Upload]] = []
    unreadable: list[ImageOutcome] = []
    for index, image in group:
        try:
            readable.append((index, image, read_upload(image, index, prepare)))
        except (OSError, TypeError, ValueError, ImportError) as exc:
            unreadable.append(ImageOutcome(index, image, error=input_error(index, exc)))
    return readable, unreadable


def input_error(index: int, exc: BaseException) -> InputError:
    """The error of an image that could not be read here, its cause chained."""
    error = InputError(f"image {index}: {_describe(exc)}")
    error.__cause__ = exc
    return error


def answered(
    sent: list[tuple[int, ImageInput, Upload]], response: PredictResponse
) -> list[ImageOutcome]:
    """One outcome per image of a request the server answered, matched by position."""
    if len(response.results) != len(sent):
        raise UnexpectedResponse(
            f"{len(sent)} images sent in one request, {len(response.results)} results received",
            status_code=200,
        )
    return [
        ImageOutcome(index, image, result, response.model, request_id=response.request_id)
        for (index, image, _), result in zip(sent, response.results, strict=True)
    ]


def failed(
    sent: list[tuple[int, ImageInput, Upload]], error: KerasServeError
) -> list[ImageOutcome]:
    request_id = getattr(error, "request_id", None)
    return [
        ImageOutcome(index, image, error=error, request_id=request_id) for index, image, _ in sent
    ]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read {exc.filename or 'the file'}: {exc.strerror}"
    return str(exc) or type(exc).__name__
