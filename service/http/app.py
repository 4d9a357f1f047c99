"""The app factory and its lifespan: load and warm every model, serve, then drain."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from kerasserve.batching import BatchPolicy
from kerasserve.service import __version__
from kerasserve.service.errors import ModelLoadError, ServiceError
from kerasserve.service.http import auth, classifiers, docs, errors, feature_routes, v2
from kerasserve.service.http.metrics import Metrics
from kerasserve.service.http.middleware import RequestContextMiddleware
from kerasserve.service.http.ops import router as ops_router
from kerasserve.service.http.routes import admin, api, ops
from kerasserve.service.http.security import Guard
from kerasserve.service.http.state import AppState, LifespanState
from kerasserve.service.http.workers import WorkerGroup
from kerasserve.service.inference.loaded import Decoder
from kerasserve.service.inference.registry import Registry
from kerasserve.service.inference.repository import build_repository
from kerasserve.service.inference.runtime import KerasRuntime
from kerasserve.service.inference.source import model_sources as model_sources  # re-exported
from kerasserve.service.settings import Settings

logger = logging.getLogger("kerasserve")

DESCRIPTION = """
Classify images with any `keras.applications` model (or your own `.keras` file).
Concurrent requests are batched dynamically: a lone request runs at once, under load
requests share a model call. Every error is an `ErrorResponse` with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; models load and warm in the lifespan, before the first request."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        policy = BatchPolicy(
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_ms / 1e3,
            max_queue=settings.max_queue,
        )
        # Before any model is built: TensorFlow sizes its pools at its first op.
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            KerasRuntime.configure_threads(
                settings.tf_intra_op_threads, settings.tf_inter_op_threads
            )
        pool = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="decode")
        registry = Registry(
            build_repository(settings, policy),
            Decoder(pool, settings.max_pixels),
            max_loaded=settings.max_loaded_models,
            drain_timeout_s=settings.drain_timeout_s,
            observer_for=metrics.observer,
        )
        state = AppState(settings, registry, pool, metrics, workers=WorkerGroup.from_env(settings))
        app.state.kerasserve = state
        if state.workers is not None:
            state.workers.join(state)
        try:
            await registry.load_all()
        except (ModelLoadError, ServiceError) as exc:
            logger.error("cannot start: %s", getattr(exc, "message", exc))
            await registry.aclose(0)
            pool.shutdown(wait=False)
            raise
        for model in registry:
            metrics.set_model_info(
                model.name,
                {
                    "version": str(model.version),
                    "weights": model.weights.kind.value,
                    "runtime": model.runtime.name,
                    "precision": model.runtime.info().precision,
                    "output_kind": model.output_kind,
                    "input_shape": "x".join(map(str, (*model.input_size, 3))),
                },
            )
        # TensorFlow, Keras and OpenVINO leave ~500,000 long-lived objects: a full collection
        # walks them all (380 ms here, every request stalled meanwhile). Moved out of the
        # collector's reach once loaded, a full collection takes 0.1 ms.
        gc.collect()
        gc.freeze()
        logger.info(
            "ready: %s",
            ", ".join(f"{e.name} ({e.state.value})" for e in registry.entries) or "no models",
        )
        poller = None
        if settings.model_repository is not None and settings.poll_repository_s > 0:
            poller = asyncio.create_task(_poll(registry, settings.poll_repository_s))
        if state.workers is not None:
            state.workers.start()
        try:
            yield {"app": state}
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            state.draining = True
            # uvicorn has already spent part of the drain budget waiting for open requests.
            await registry.aclose(state.drain_left())
            await classifiers.aclose(app)
            pool.shutdown(wait=True, cancel_futures=True)
            if state.workers is not None:
                await state.workers.leave()
            # Back within the collector's reach: an app started in a longer-lived process (a
            # test suite's) does not leave its models frozen behind it.
            gc.unfreeze()
            logger.info("stopped")

    app = FastAPI(
        title="kerasserve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": settings.otel, "metrics": settings.otel, "logs": settings.otel},
    )
    errors.install(app)
    v2.install(app)
    docs.install(app)
    app.state.guard = Guard(settings)
    app.include_router(auth.router)
    app.include_router(api)
    app.include_router(admin)
    app.include_router(feature_routes.router)
    app.include_router(classifiers.router)
    app.include_router(ops)
    app.include_router(ops_router)
    app.include_router(v2.router)
    web = _web_root()
    if web is not None:
        app.mount("/", WebPage(directory=web, html=True), name="web")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "X-Request-ID", "Content-Type"],
            expose_headers=["X-Request-ID", "Server-Timing", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, access_log=settings.access_log)
    if not settings.api_keys and not settings.wechat_appid:
        _document_auth_as_optional(app)
    return app


async def _poll(registry: Registry, every_s: float) -> None:
    """Pick up new models and version folders (and retire removed ones) by themselves."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await registry.sync()
        except Exception:  # a poll must never end the server; the next one tries again
            logger.exception("repository poll failed")


def _document_auth_as_optional(app: FastAPI) -> None:
    """With no API keys configured, say so in OpenAPI: `{}` in a security list means none."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    security = operation.get("security")
                    if security is not None and {} not in security:
                        security.append({})
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


class WebPage(StaticFiles):
    """The web page's assets, and nothing else that happens to lie in its folder."""

    SUFFIXES = frozenset({".html", ".js", ".css", ".png", ".svg", ".ico", ".webp"})

    async def get_response(self, path: str, scope: Scope) -> Response:
        suffix = PurePosixPath(path).suffix
        if suffix and suffix not in self.SUFFIXES:
            raise StarletteHTTPException(404)
        return await super().get_response(path, scope)


def _web_root() -> Path | None:
    """The web page's folder (`clients/web`, installed as package `kerasserve_web`)."""
    try:
        root = Path(str(resources.files("kerasserve_web")))
    except ModuleNotFoundError:
        return None
    return root if (root / "index.html").is_file() else None
