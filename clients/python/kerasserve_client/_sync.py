"""`Client`: the blocking twin. Everything but the I/O lives in `_base.py`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
from kerasserve_client._uploads import DEFAULT_MAX_SIDE, ImageInput, Prepare, Upload, read_upload
from kerasserve_client.errors import (
    KerasServeError,
    ReadyTimeout,
    TransportError,
    Unavailable,
    api_error,
    transport_error,
)
from kerasserve_client.retry import DEFAULT_RETRY, Retry


class Client(BaseClient):
    """A blocking kerasserve client; thread-safe, close it (or use `with`) to free connections.

    >>> with Client("http://127.0.0.1:8000") as client:
    ...     best = client.predict("cat.jpg", top_k=3).results[0].predictions[0]
    ...     print(best.label, best.probability)

    `model=None` uses the server's default model (asked once, then remembered). `transport=` takes
    any `httpx.BaseTransport` (e.g. `httpx.MockTransport` in tests); `http_client=` your own
    `httpx.Client`, which the SDK uses but never closes.
    """

    _sleep: Callable[[float], None] = staticmethod(time.sleep)
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
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
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
        self._http = http_client or httpx.Client(transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call[T], *, retry: bool = True, timeout: float | None = None) -> T:
        retries = 0
        while True:
            cause: Exception | None = None
            try:
                response = self._http.request(**self._send_kwargs(call, timeout))
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
            self._sleep(delay)
            retries += 1

    def _model(self, model: str | None) -> str:
        return self._explicit_model(model) or self._remember_default(self.models())

    def predict(
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
            self._model(model), [read_upload(image, 0, self.prepare)], top_k, lang
        )
        return self._send(call)

    def predict_many(
        self,
        images: Sequence[ImageInput],
        *,
        model: str | None = None,
        top_k: int | None = None,
        lang: str | None = None,
        per_request: int = DEFAULT_PER_REQUEST,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> PredictResponse:
        """Classify several images, `per_request` to a request, `concurrency` requests at once
        (threads).

        Results come back in input order; the first failure is raised once the requests already
        running end. To keep going past a bad image, use `predict_iter`.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        check_predict_options(top_k, lang)
        groups = split(images, per_request)
        name = self._model(model)

        def send(group: list[tuple[int, ImageInput]]) -> PredictResponse:
            uploads = [read_upload(image, index, self.prepare) for index, image in group]
            return self._send(self._predict_call(name, uploads, top_k, lang))

        if concurrency == 1 or len(groups) == 1:
            return merge([send(group) for group in groups])
        with ThreadPoolExecutor(min(concurrency, len(groups)), "kerasserve-predict") as pool:
            futures = [pool.submit(send, group) for group in groups]
            try:
                return merge([future.result() for future in futures])
            finally:
                for future in futures:
                    future.cancel()

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
    ) -> Iterator[ImageOutcome]:
        """Classify many images, yielding each one's `ImageOutcome` as soon as it is answered.

        A bad image yields its own error (`outcome.error`) and the others go on; errors that
        would fail every image (server unreachable, unknown model, API key, bad parameter) are
        raised. `concurrency` requests run at once on threads; with `per_request` > 1 a request
        that fails for one image is resent image by image. `images` may be any iterable, read
        lazily. `on_progress(progress)` runs in the iterating thread after each image.

        >>> for outcome in client.predict_iter(paths, on_progress=print):
        ...     print(outcome.index, outcome.result or outcome.error)
        """
        # Checked now, not at the first `next()`: a generator would defer every error.
        run = BulkRun(
            images, per_request=per_request, concurrency=concurrency, on_progress=on_progress
        )
        check_predict_options(top_k, lang)
        return self._iterate(run, model, top_k, lang)

    def _iterate(
        self, run: BulkRun, model: str | None, top_k: int | None, lang: str | None
    ) -> Iterator[ImageOutcome]:
        concurrency = run.concurrency
        name = self._model(model)
        pending: set[Future[list[ImageOutcome]]] = set()
        pool = ThreadPoolExecutor(concurrency, "kerasserve-predict")
        try:
            for group in run.groups():
                if len(pending) >= concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield from run.report(future.result())
                pending.add(pool.submit(self._predict_group, name, group, top_k, lang))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from run.report(future.result())
        finally:
            # Stopped early (an error, or the caller broke off): drop what has not started.
            pool.shutdown(wait=True, cancel_futures=True)

    def _predict_group(
        self, name: str, group: Group, top_k: int | None, lang: str | None
    ) -> list[ImageOutcome]:
        readable, outcomes = read_group(group, self.prepare)
        if readable:
            outcomes += self._predict_uploads(name, readable, top_k, lang)
        return outcomes

    def _predict_uploads(
        self,
        name: str,
        sent: list[tuple[int, ImageInput, Upload]],
        top_k: int | None,
        lang: str | None,
    ) -> list[ImageOutcome]:
        call = self._predict_call(name, [upload for _, _, upload in sent], top_k, lang)
        try:
            response = self._send(call)
        except KerasServeError as exc:
            if is_fatal(exc):
                raise
            if len(sent) > 1 and is_image_specific(exc):
                return [o for one in sent for o in self._predict_uploads(name, [one], top_k, lang)]
            return failed(sent, exc)
        return answered(sent, response)

    def features(
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
            self._model(model), read_upload(image, 0, self.prepare), layer, pooling
        )
        return self._send(call)

    def teach(
        self,
        name: str,
        examples: Mapping[str, Sequence[ImageInput]],
        *,
        base: str | None = None,
    ) -> ClassifierResponse:
        """Teach the server a classifier by example; it serves as `name` once this returns.

        `examples` maps each label (any language) to its photos; `base` is the keras.applications
        model whose embeddings it uses (None: the server's default, or the classifier's earlier
        base). Posting to an existing name adds the photos to its earlier ones as a new version.
        Needs the server's admin key as `api_key`.

        >>> taught = client.teach("pets", {"cat": ["c1.jpg", "c2.jpg"], "dog": ["d1.jpg", "d2.jpg"]})
        >>> taught.accuracy, client.predict("new.jpg", model="pets").results[0].predictions[0].label
        """
        uploads, labels = teach_uploads(examples, self.prepare)
        return self._send(self._teach_call(name, uploads, labels, base))

    def retire(self, name: str) -> ClassifierRetired:
        """Stop serving a taught classifier and delete its versions (admin)."""
        return self._send(self._retire_call(name))

    def features_iter(
        self,
        images: Iterable[ImageInput],
        *,
        model: str | None = None,
        layer: str | None = None,
        pooling: Pooling | None = None,
        concurrency: int = DEFAULT_ITER_CONCURRENCY,
    ) -> Iterator[FeatureOutcome]:
        """Features of many images, one request each, yielding each `FeatureOutcome` as it comes.

        As `predict_iter`: a bad image yields its own error and the others go on; errors that
        would fail every image are raised; `concurrency` requests run at once on threads.

        >>> for outcome in client.features_iter(paths):
        ...     print(outcome.index, len(outcome.vector) if outcome.ok else outcome.error)
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        return self._features_iterate(iter(enumerate(images)), model, layer, pooling, concurrency)

    def _features_iterate(
        self,
        numbered: Iterator[tuple[int, ImageInput]],
        model: str | None,
        layer: str | None,
        pooling: Pooling | None,
        concurrency: int,
    ) -> Iterator[FeatureOutcome]:
        name = self._model(model)

        def one(index: int, image: ImageInput) -> FeatureOutcome:
            try:
                upload = read_upload(image, index, self.prepare)
            except (OSError, TypeError, ValueError, ImportError) as exc:
                return FeatureOutcome(index, image, error=input_error(index, exc))
            try:
                response = self._send(self._features_call(name, upload, layer, pooling))
            except KerasServeError as exc:
                if is_fatal(exc):
                    raise
                return FeatureOutcome(index, image, error=exc)
            return FeatureOutcome(index, image, response)

        pending: set[Future[FeatureOutcome]] = set()
        pool = ThreadPoolExecutor(concurrency, "kerasserve-features")
        try:
            for index, image in numbered:
                if len(pending) >= concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (future.result() for future in done)
                pending.add(pool.submit(one, index, image))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def models(self) -> ModelList:
        return self._send(self._models_call())

    def model(self, name: str) -> ModelInfo:
        return self._send(self._model_call(name))

    def layers(self, model: str | None = None) -> LayerList:
        """The layers `features(layer=...)` can read, with their output shapes."""
        return self._send(self._layers_call(self._model(model)))

    def health(self) -> Health:
        return self._send(self._health_call())

    def ready(self) -> Readiness:
        """The server's readiness; `ready` is False (not an error) while models load."""
        return self._send(self._ready_call())

    def wait_until_ready(self, timeout: float = 60.0, *, interval: float = 0.25) -> Readiness:
        """Poll `/readyz` until the server is ready; raises `ReadyTimeout` after `timeout` s.

        A refused connection or a 503 counts as "not yet"; any other error is raised at once.
        """
        deadline = self._clock() + timeout
        last: Readiness | None = None
        while True:
            remaining = deadline - self._clock()
            failure: Exception | None = None
            try:
                last = self._send(self._ready_call(), retry=False, timeout=max(remaining, 0.1))
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
            self._sleep(min(interval, remaining))
