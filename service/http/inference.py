"""From an upload to results: decode in the thread pool, batch, top-k; cancel if the client goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from fastapi import Request

from batching import Completed
from schemas import ImageResult, Prediction, Timing
from service.errors import ClientGone, MissingImage, ServiceError
from service.http.state import AppState
from service.http.upload import IMAGE_FIELD, Part, Upload
from service.inference.imaging import decode_image
from service.inference.models import ServedModel

T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client disconnects first.

    The body has been read in full, so the next ASGI message can only be a disconnect:
    waiting for it costs nothing, and cancelling `work` drops queued images before
    their batch runs.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        raise ClientGone("the client disconnected; its queued images were dropped")
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _wait_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass
class Inferred:
    part: Part
    output: np.ndarray  # class probabilities, or features for /features
    completed: Completed[np.ndarray]
    decode_ms: float


def _describe(index: int, part: Part, count: int) -> str:
    if count == 1:
        return ""
    name = f" ({part.filename})" if part.filename else ""
    return f"image {index + 1}{name}: "


async def _decode(
    state: AppState, model: ServedModel, index: int, part: Part, count: int
) -> tuple[np.ndarray, float]:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        pixels = await loop.run_in_executor(
            state.decode_pool, decode_image, part.data, model.input_size, state.settings.max_pixels
        )
    except ServiceError as exc:
        prefix = _describe(index, part, count)
        if prefix:
            exc.message = prefix + exc.message
        raise
    return pixels, (time.perf_counter() - start) * 1e3


Submit = Callable[[np.ndarray, object], Awaitable[Completed[np.ndarray]]]


async def infer_upload(
    request: Request,
    state: AppState,
    model: ServedModel,
    upload: Upload,
    submit: Submit | None = None,
) -> list[Inferred]:
    """Decode every image of `upload`, run them through a batcher (by default the model's
    predictions; `submit` picks another, e.g. a feature output), in upload order."""
    if submit is None:

        async def submit(pixels: np.ndarray, tag: object) -> Completed[np.ndarray]:
            return await model.infer(pixels, tag=tag)

    if not upload.images:
        got = sorted(set(upload.fields) | set(upload.other_files))
        hint = f"; the form has {got}" if got else ""
        raise MissingImage(f"no file in the form field {IMAGE_FIELD!r}{hint}")
    parts = upload.images
    decoded = await asyncio.gather(
        *(_decode(state, model, i, part, len(parts)) for i, part in enumerate(parts))
    )
    rid = getattr(request.state, "request_id", None)
    completions = await until_disconnect(
        request, asyncio.gather(*(submit(pixels, rid) for pixels, _ in decoded))
    )
    return [
        Inferred(part, done.value, done, decode_ms)
        for part, (_, decode_ms), done in zip(parts, decoded, completions, strict=True)
    ]


def top_k(model: ServedModel, probs: np.ndarray, k: int) -> list[Prediction]:
    labels = model.labels
    assert labels is not None
    k = min(k, probs.shape[0])
    idx = np.argpartition(-probs, k - 1)[:k]
    idx = idx[np.argsort(-probs[idx], kind="stable")]
    return [
        Prediction(
            index=int(i),
            class_id=labels.class_ids[i],
            label=labels.names[i],
            probability=min(1.0, max(0.0, float(probs[i]))),
        )
        for i in idx
    ]


def image_result(model: ServedModel, item: Inferred, k: int) -> ImageResult:
    done = item.completed
    return ImageResult(
        filename=item.part.filename,
        predictions=top_k(model, item.output, k),
        timing=Timing(
            queue_ms=round(done.queue_s * 1e3, 3),
            inference_ms=round(done.run_s * 1e3, 3),
            batch_size=done.batch_size,
            decode_ms=round(item.decode_ms, 3),
        ),
    )


def server_timing(results: list[Inferred]) -> str:
    decode = max(r.decode_ms for r in results)
    queue = max(r.completed.queue_s for r in results) * 1e3
    infer = max(r.completed.run_s for r in results) * 1e3
    return f"decode;dur={decode:.2f}, queue;dur={queue:.2f}, inference;dur={infer:.2f}"
