"""`AsyncClient`: the asyncio twin of `Client`. Everything but the I/O lives in `_base.py`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType

import httpx

from kerasserve.schemas import (
    ClassifierResponse,
    ClassifierRetired,
    FeaturesResponse,
    Health,
    LayerList,
    ModelInfo,
    ModelList,
    PredictResponse,
    Readiness,
)
from kerasserve_client._base import (
    DEFAULT_CONCURRENCY,
    DEFAULT_ITER_CONCURRENCY,
    DEFAULT_PER_REQUEST,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    BaseClient,
    Call,
    Pooling,
    T,
    check_predict_options,
    merge,
    split,
    teach_uploads,
)
from kerasserve_client._bulk import (
    BulkRun,
    Group,
    ImageOutcome,
    ProgressCallback,
    answered,
    failed,
    input_error,
    is_fatal,
    is_image_specific,
    read_group,
)
from kerasserve_client._encode import ImageFormat
from kerasserve_client._features import FeatureOutcome
from kerasserve_client._uploads import (
    DEFAULT_MAX_SIDE,
    ImageInput,
    Prepare,
    Upload,
    needs_thread,
    read_upload,
)
from kerasserve_client.errors import (
    KerasServeError,
    ReadyTimeout,
    TransportError,
    Unavailable,
    api_error,
    transport_error,
)
from kerasserve_client.retry import DEFAULT_RETRY, Retry


class AsyncClient(BaseClient):
    """An asyncio kerasserve client; close it (or use `async with`) to free connections.

    >>> async with AsyncClient("http://127.0.0.1:8000") as client:
    ...     answer = await client.predict_many(["a.jpg", "b.jpg"], concurrency=4)

    `model=None` uses the server's default model (asked once, then remembered). `transport=` takes
    any `httpx.BaseTransport` (e.g. `httpx.MockTransport` in tests); `http_client=` your own
    `httpx.AsyncClient`, which the SDK uses but never closes.
    """

    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)
    _clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        base_url: str | httpx.URL = DEFAULT_URL,
        *,
        model: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        api_key: str | None = None,
        retry: Retry | int | None = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        pixels: ImageFormat = "jpeg",
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url,
            model=model,
            timeout=timeout,
            api_key=api_key,
            retry=retry,
            headers=headers,
            prepare=Prepare(max_side, pixels),
            transport=transport,
            http_client=http_client,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: Call[T], *, retry: bool = True, timeout: float | None = None) -> T:
        retries = 0
        while True:
            cause: Exception | None = None
            try:
                response = await self._http.request(**self._send_kwargs(call, timeout))
            except httpx.TransportError as exc:
                error: KerasServeError = transport_error(exc, self.base_url)
                cause = exc
            else:
                if response.is_success or response.status_code in call.accept:
                    return self._parse(call, response)
                error = api_error(response)
            delay = self.retry.delay(error, retries, idempotent=call.idempotent) if retry else None
            if delay is None:
                raise error from cause
            await self._sleep(delay)
            retries += 1

    async def _model(self, model: str | None) -> str:
        return self._explicit_model(model) or self._remember_default(await self.models())

    async def predict(
        self,
        image: ImageInput,
        *,
        model: str | None = None,
        top_k: int | None = None,
        lang: str | None = None,
    ) -> PredictResponse:
        """Classify one image; `top_k=None` lets the server choose (5).

        `lang` picks the labels' language (e.g. "zh-CN"); the answer's `model.labels_language`
        says which the server used.
        """
        call = self._predict_call(
            await self._model(model), [await _read(image, 0, self.prepare)], top_k, lang
        )
        return await self._send(call)

    async def predict_many(
        self,
        images: Sequence[ImageInput],
        *,
        model: str | None = None,
        top_k: int | None = None,
        lang: str | None = None,
        per_request: int = DEFAULT_PER_REQUEST,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> PredictResponse:
        """Classify several images, `per_request` to a request, `concurrency` requests at once.

        Results come back in input order. The first failure cancels the requests still running;
        to keep going past a bad image, use `predict_iter`. The defaults (4 images a request, 2
        in flight) keep one request decoding while another runs, which is what a small CPU
        server gains from; raise `concurrency` for many cores or several replicas behind a load
        balancer.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        check_predict_options(top_k, lang)
        groups = split(images, per_request)
        name = await self._model(model)
        slots = asyncio.Semaphore(concurrency)

        async def send(group: list[tuple[int, ImageInput]]) -> PredictResponse:
            async with slots:
                uploads = [await _read(image, index, self.prepare) for index, image in group]
                return await self._send(self._predict_call(name, uploads, top_k, lang))

        # Not a TaskGroup: callers catch `InvalidImage`, not an ExceptionGroup wrapping it.
        tasks = [asyncio.create_task(send(group)) for group in groups]
        try:
            responses = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return merge(responses)

    def predict_iter(
        self,
        images: Iterable[ImageInput],
        *,
        model: str | None = None,
        top_k: int | None = None,
        lang: str | None = None,
        per_request: int = 1,
        concurrency: int = DEFAULT_ITER_CONCURRENCY,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncIterator[ImageOutcome]:
        """Classify many images, yielding each one's `ImageOutcome` as soon as it is answered.

        A bad image yields its own error (`outcome.error`) and the others go on; errors that
        would fail every image (server unreachable, unknown model, API key, bad parameter) are
        raised. `concurrency` requests run at once; with `per_request` > 1 a request that fails
        for one image is resent image by image. `images` may be any iterable, read lazily.
        `on_progress(progress)` runs after each image, never concurrently with itself. To stop
        early, close the iterator (`contextlib.aclosing`) so the requests in flight are cancelled.

        >>> async with aclosing(client.predict_iter(paths)) as outcomes:
        ...     async for outcome in outcomes:
        ...         print(outcome.index, outcome.result or outcome.error)
        """
        # Checked now, not at the first `anext()`: a generator would defer every error.
        run = BulkRun(
            images, per_request=per_request, concurrency=concurrency, on_progress=on_progress
        )
        check_predict_options(top_k, lang)
        return self._iterate(run, model, top_k, lang)

    async def _iterate(
        self, run: BulkRun, model: str | None, top_k: int | None, lang: str | None
    ) -> AsyncIterator[ImageOutcome]:
        name = await self._model(model)
        pending: set[asyncio.Task[list[ImageOutcome]]] = set()
        try:
            for group in run.groups():
                if len(pending) >= run.concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for outcome in run.report(_outcomes(done)):
                        yield outcome
                pending.add(asyncio.create_task(self._predict_group(name, group, top_k, lang)))
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for outcome in run.report(_outcomes(done)):
                    yield outcome
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _predict_group(
        self, name: str, group: Group, top_k: int | None, lang: str | None
    ) -> list[ImageOutcome]:
        if any(needs_thread(image, self.prepare) for _, image in group):
            readable, outcomes = await asyncio.to_thread(read_group, group, self.prepare)
        else:
            readable, outcomes = read_group(group, self.prepare)
        if readable:
            outcomes += await self._predict_uploads(name, readable, top_k, lang)
        return outcomes

    async def _predict_uploads(
        self,
        name: str,
        sent: list[tuple[int, ImageInput, Upload]],
        top_k: int | None,
        lang: str | None,
    ) -> list[ImageOutcome]:
        call = self._predict_call(name, [upload for _, _, upload in sent], top_k, lang)
        try:
            response = await self._send(call)
        except KerasServeError as exc:
            if is_fatal(exc):
                raise
            if len(sent) > 1 and is_image_specific(exc):
                outcomes: list[ImageOutcome] = []
                for one in sent:
                    outcomes += await self._predict_uploads(name, [one], top_k, lang)
                return outcomes
            return failed(sent, exc)
        return answered(sent, response)

    async def features(
        self,
        image: ImageInput,
        *,
        model: str | None = None,
        layer: str | None = None,
        pooling: Pooling | None = None,
    ) -> FeaturesResponse:
        """Features of one image at `layer` (None: the model's default embedding layer).

        `features_to_numpy(client.features(...))` turns the answer into an array.
        """
        call = self._features_call(
            await self._model(model), await _read(image, 0, self.prepare), layer, pooling
        )
        return await self._send(call)

    async def teach(
        self,
        name: str,
        examples: Mapping[str, Sequence[ImageInput]],
        *,
        base: str | None = None,
    ) -> ClassifierResponse:
        """Teach the server a classifier by example, as `Client.teach` (photos read in a thread).

        >>> taught = await client.teach("pets", {"cat": ["c1.jpg"] * 2, "dog": ["d1.jpg"] * 2})
        """
        uploads, labels = await asyncio.to_thread(teach_uploads, examples, self.prepare)
        return await self._send(self._teach_call(name, uploads, labels, base))

    async def retire(self, name: str) -> ClassifierRetired:
        """Stop serving a taught classifier and delete its versions (admin)."""
        return await self._send(self._retire_call(name))

    def features_iter(
        self,
        images: Iterable[ImageInput],
        *,
        model: str | None = None,
        layer: str | None = None,
        pooling: Pooling | None = None,
        concurrency: int = DEFAULT_ITER_CONCURRENCY,
    ) -> AsyncIterator[FeatureOutcome]:
        """Features of many images as they complete, as `Client.features_iter`.

        >>> async for outcome in client.features_iter(paths):
        ...     print(outcome.index, outcome.ok)
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        return self._features_iterate(iter(enumerate(images)), model, layer, pooling, concurrency)

    async def _features_iterate(
        self,
        numbered: Iterator[tuple[int, ImageInput]],
        model: str | None,
        layer: str | None,
        pooling: Pooling | None,
        concurrency: int,
    ) -> AsyncIterator[FeatureOutcome]:
        name = await self._model(model)

        async def one(index: int, image: ImageInput) -> FeatureOutcome:
            try:
                upload = await _read(image, index, self.prepare)
            except (OSError, TypeError, ValueError, ImportError) as exc:
                return FeatureOutcome(index, image, error=input_error(index, exc))
            try:
                response = await self._send(self._features_call(name, upload, layer, pooling))
            except KerasServeError as exc:
                if is_fatal(exc):
                    raise
                return FeatureOutcome(index, image, error=exc)
            return FeatureOutcome(index, image, response)

        pending: set[asyncio.Task[FeatureOutcome]] = set()
        try:
            for index, image in numbered:
                if len(pending) >= concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
                pending.add(asyncio.create_task(one(index, image)))
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def models(self) -> ModelList:
        return await self._send(self._models_call())

    async def model(self, name: str) -> ModelInfo:
        return await self._send(self._model_call(name))

    async def layers(self, model: str | None = None) -> LayerList:
        """The layers `features(layer=...)` can read, with their output shapes."""
        return await self._send(self._layers_call(await self._model(model)))

    async def health(self) -> Health:
        return await self._send(self._health_call())

    async def ready(self) -> Readiness:
        """The server's readiness; `ready` is False (not an error) while models load."""
        return await self._send(self._ready_call())

    async def wait_until_ready(self, timeout: float = 60.0, *, interval: float = 0.25) -> Readiness:
        """Poll `/readyz` until the server is ready; raises `ReadyTimeout` after `timeout` s.

        A refused connection or a 503 counts as "not yet"; any other error is raised at once.
        """
        deadline = self._clock() + timeout
        last: Readiness | None = None
        while True:
            remaining = deadline - self._clock()
            failure: Exception | None = None
            try:
                last = await self._send(
                    self._ready_call(), retry=False, timeout=max(remaining, 0.1)
                )
            except (TransportError, Unavailable) as exc:
                failure = exc
            else:
                if last.ready:
                    return last
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ReadyTimeout(
                    self._ready_timeout_message(timeout, last, failure), last=last
                ) from failure
            await self._sleep(min(interval, remaining))


def _outcomes(done: set[asyncio.Task[list[ImageOutcome]]]) -> list[ImageOutcome]:
    """The outcomes of finished tasks, or the first error among them; every task's exception is
    retrieved, so none is logged as lost when one is raised."""
    errors = [exc for task in done if (exc := task.exception()) is not None]
    if errors:
        raise errors[0]
    return [outcome for task in done for outcome in task.result()]


async def _read(image: ImageInput, index: int, prepare: Prepare) -> Upload:
    """Read an image input, off the event loop when that means disk I/O or decoding."""
    if needs_thread(image, prepare):
        return await asyncio.to_thread(read_upload, image, index, prepare)
    return read_upload(image, index, prepare)
