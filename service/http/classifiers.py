"""Admin routes that teach the server new classes by example, in seconds, and retire them.

POST /v1/classifiers/{name}?base=MobileNetV2   photos in `image`, a JSON array in `labels`
  1. embeddings through the base's batched feature path (a served base, else one loaded
     here with the server's weights; when extending, the classifier's own trunk)
  2. a cosine nearest-centroid and a logistic regression fitted on them; leave-one-out
     keeps the better (service/inference/fitting.py)
  3. base + head saved as one .keras file, the next version of `name`
     (service/inference/teaching.py), loaded beside the old one and swapped in
DELETE /v1/classifiers/{name}                  unload it and remove its files
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam

from kerasserve.batching import BatchPolicy
from kerasserve.schemas import ModelInfo
from kerasserve.schemas.classifiers import (
    ClassExamples,
    ClassifierResponse,
    ClassifierRetired,
    HeadEvaluation,
    TeachTiming,
)
from kerasserve.service.errors import InvalidRequest, ModelNotFound, ServiceError
from kerasserve.service.http.errors import openapi_errors
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.params import State
from kerasserve.service.http.security import require_admin_key
from kerasserve.service.http.state import AppState
from kerasserve.service.http.upload import read_upload
from kerasserve.service.inference import catalogue, fitting, loading, teaching
from kerasserve.service.inference.loaded import LoadedModel
from kerasserve.service.inference.repository import RepoModel
from kerasserve.service.inference.source import base_source

logger = logging.getLogger("kerasserve.classifiers")

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_admin_key)],
    tags=["admin", "classifiers"],
    route_class=LeanRoute,
)

ClassifierName = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=100,
        description="The classifier's name: ASCII letters, digits, `_.-` (labels: any language).",
        examples=["colours"],
    ),
]
Base = Annotated[
    str | None,
    Query(
        max_length=100,
        description="The keras.applications model whose embeddings the head is fitted on "
        "(default: the classifier's own base when it exists, else MobileNetV2).",
    ),
]
DEFAULT_BASE = "MobileNetV2"

TEACH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "labels"],
                    "properties": {
                        "image": {
                            "type": "array",
                            "minItems": 4,
                            "items": {"type": "string", "format": "binary"},
                            "description": "The photos (at least 2 classes, 2 photos each).",
                        },
                        "labels": {
                            "type": "string",
                            "description": "A JSON array, one label per photo in upload order: "
                            '["cat", "cat", "狗", "狗"].',
                        },
                    },
                },
                "encoding": {"image": {"contentType": "image/*"}},
            }
        },
    }
}


class Teacher:
    """What the routes keep between requests: one lock per name, the bases loaded here (not
    served), and the folder classifiers live in when the server has no repository."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.locks: dict[str, asyncio.Lock] = {}
        self.bases: dict[str, LoadedModel] = {}
        self._bases_lock = asyncio.Lock()
        repository = state.settings.model_repository
        self.own_folder = (
            None if repository else Path(tempfile.mkdtemp(prefix="kerasserve-classifiers-"))
        )
        self.store = teaching.ClassifierStore(
            repository or self.own_folder,  # type: ignore[arg-type]
            max_batch=min(state.settings.max_batch_size, teaching.MAX_BATCH),
        )

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.setdefault(name, asyncio.Lock())

    async def base(self, family: str) -> LoadedModel:
        """A catalogue model for embeddings: the one served, else one loaded here."""
        for entry in self.state.registry.entries:
            model = entry.current
            if model is not None and model.family == family and model.source.model_file is None:
                return model
        async with self._bases_lock:
            if family not in self.bases:
                settings = self.state.settings
                source = replace(
                    base_source(settings),
                    name=f"{family}-embeddings",
                    family=family,
                    runtime="keras",
                    precision="fp32",
                    calibrate_batch=False,
                    tune_batch=False,
                )
                logger.info("loading %s (weights %s) for embeddings", family, settings.weights)
                self.bases[family] = await loading.load(
                    source, policy(settings), settings.timeout_s, self.state.registry.decoder
                )
            return self.bases[family]

    async def aclose(self) -> None:
        await asyncio.gather(*(m.aclose(0) for m in self.bases.values()))
        self.bases.clear()
        if self.own_folder is not None:
            shutil.rmtree(self.own_folder, ignore_errors=True)


def policy(settings: Any) -> BatchPolicy:
    return BatchPolicy(
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_wait_ms / 1e3,
        max_queue=settings.max_queue,
    )


def teacher(request: Request) -> Teacher:
    found: Teacher | None = getattr(request.app.state, "classifiers", None)
    if found is None:
        found = Teacher(request.state.app)
        request.app.state.classifiers = found
    return found


async def aclose(app: Any) -> None:
    """At shutdown: free the bases loaded for embeddings and the server-owned folder."""
    found: Teacher | None = getattr(app.state, "classifiers", None)
    if found is not None:
        await found.aclose()


@router.post(
    "/classifiers/{name}",
    response_model=ClassifierResponse,
    summary="Teach a classifier by example (admin): photos and labels in, a served model out",
    openapi_extra=TEACH_BODY,
    responses=openapi_errors(400, 401, 403, 404, 413, 415, 422, 503, 504),
)
async def teach(
    request: Request, state: State, name: ClassifierName, base: Base = None
) -> Response:
    """Fit a head on the base's embeddings of the photos and publish base + head as the next
    version of `name`; `POST /v1/models/{name}/predict` answers with these labels at once.
    Posting to an existing classifier adds the new photos to the earlier ones (a new version).
    """
    started = time.perf_counter()
    teaching.check_name(name)
    own = teacher(request)
    if own.own_folder is not None and state.workers is not None:
        raise InvalidRequest(
            "this server runs several workers and has no model repository: a classifier taught "
            "here would serve in one worker only; start it with --model-repository DIR"
        )
    settings = state.settings
    upload = await read_upload(
        request,
        max_bytes=settings.max_body_bytes,
        max_images=settings.max_images,
        timeout_s=settings.upload_timeout_s,
    )
    images, filenames = upload.require_images()
    labels = teaching.check_labels(upload.fields.get("labels"), len(images))
    async with own.lock(name):
        previous = own.store.latest(name)
        _check_free(state, own, name)
        family = catalogue.resolve_name(
            base or (previous.base if previous else DEFAULT_BASE), catalogue.model_names()
        )
        if previous is not None and family != previous.base:
            raise InvalidRequest(
                f"{name!r} was taught on {previous.base}, not {family}: post with "
                f"base={previous.base} (or none), or DELETE /v1/classifiers/{name} first",
                extra={"base": previous.base},
            )
        all_labels = (previous.labels if previous else []) + labels
        try:
            counts = fitting.check_examples(all_labels)
        except fitting.FitError as exc:
            raise InvalidRequest(str(exc), extra={"classes": dict(Counter(all_labels))}) from None

        trunk = await _trunk(state, own, name, family, previous)
        layer = previous.layer if previous else trunk.features.default_layer
        embed_start = time.perf_counter()
        with trunk.lease():
            inferred = await trunk.extract(
                images,
                layer,
                "avg",
                names=filenames,
                request_id=getattr(request.state, "request_id", None),
            )
        new = np.stack([item.output.reshape(-1) for item in inferred])
        embeddings = new if previous is None else np.concatenate([previous.embeddings, new])
        loop = asyncio.get_running_loop()
        fit_start = time.perf_counter()
        try:
            head = await loop.run_in_executor(None, fitting.fit, embeddings, all_labels)
        except fitting.FitError as exc:
            raise InvalidRequest(str(exc)) from None
        save_start = time.perf_counter()
        meta = {
            "head": head.kind,
            "temperature": head.temperature,
            "accuracy": head.evaluation.accuracy,
            "evaluations": {k: e.accuracy for k, e in head.evaluations.items()},
            "examples": len(all_labels),
        }
        version, where = await loop.run_in_executor(
            None,
            own.store.write,
            name,
            trunk.model,
            family,
            layer,
            head,
            embeddings,
            all_labels,
            meta,
        )
        load_start = time.perf_counter()
        info = await _publish(state, own, name, version, where)
    done = time.perf_counter()
    new_counts = Counter(labels)
    body = ClassifierResponse(
        name=name,
        version=version,
        base=family,
        layer=layer,
        head=head.kind,
        temperature=head.temperature,
        accuracy=head.evaluation.accuracy,
        heads=[
            HeadEvaluation(kind=kind, loo_accuracy=e.accuracy, loo_log_loss=e.log_loss)
            for kind, e in head.evaluations.items()
        ],
        examples=len(all_labels),
        new_examples=len(labels),
        classes=[
            ClassExamples(
                label=label,
                examples=counts[label],
                new_examples=new_counts.get(label, 0),
                loo_accuracy=head.evaluation.per_class[label],
            )
            for label in head.classes
        ],
        confusion=head.evaluation.confusion,
        stored_in=str(where),
        timing=TeachTiming(
            embed_s=round(fit_start - embed_start, 3),
            fit_s=round(save_start - fit_start, 3),
            save_s=round(load_start - save_start, 3),
            load_s=round(done - load_start, 3),
            total_s=round(done - started, 3),
        ),
        model=info,
    )
    logger.info(
        "taught %s v%d on %s: %d examples, %d classes, %s head, leave-one-out %.3f, %.1f s",
        name,
        version,
        family,
        len(all_labels),
        len(head.classes),
        head.kind,
        head.evaluation.accuracy,
        done - started,
    )
    return Response(body.model_dump_json(), media_type="application/json")


@router.delete(
    "/classifiers/{name}",
    response_model=ClassifierRetired,
    summary="Retire a classifier taught by example (admin): unload it, remove its files",
    responses=openapi_errors(401, 403, 404, 422),
)
async def retire(request: Request, state: State, name: ClassifierName) -> Response:
    teaching.check_name(name)
    own = teacher(request)
    async with own.lock(name):
        if not own.store.is_classifier(name):
            raise ModelNotFound(
                f"no classifier {name!r} was taught on this server; `GET /v1/models` lists "
                "the served models",
                extra={"name": name},
            )
        # Files first: a repository poll that runs meanwhile sees the folder gone and
        # forgets the model too, rather than loading it back.
        versions = own.store.retire(name)
        if own.own_folder is not None:
            state.registry.repository.remove(name)
        with contextlib.suppress(ModelNotFound):  # a poll retired it first
            await state.registry.unload(name, forget=True)
        if state.workers is not None:
            await state.workers.broadcast("unload", name)
    logger.info("retired classifier %s (versions %s)", name, versions)
    body = ClassifierRetired(name=name, versions=versions)
    return Response(body.model_dump_json(), media_type="application/json")


# -- inside -------------------------------------------------------------------------------------
def _check_free(state: AppState, own: Teacher, name: str) -> None:
    """`name` is a classifier taught here, or nothing served yet."""
    if own.store.is_classifier(name):
        return
    taken = [e.name for e in state.registry.entries if e.name.lower() == name.lower()]
    if taken or own.store.folder(name).exists():
        raise InvalidRequest(
            f"{name!r} already names a model this server serves (not one taught by example); "
            "choose another name",
            extra={"name": name},
        )


async def _trunk(
    state: AppState, own: Teacher, name: str, family: str, previous: teaching.Stored | None
) -> LoadedModel:
    """Where embeddings come from: for a new classifier its base; for one that grows, its
    own served version (the same trunk weights its stored examples were embedded with,
    even when the base's weights are random and the server restarted)."""
    if previous is None:
        return await own.base(family)
    try:
        return state.registry.get(name)
    except ServiceError:
        await state.registry.load(name)
        return state.registry.get(name)


async def _publish(
    state: AppState, own: Teacher, name: str, version: int, where: Path
) -> ModelInfo:
    """Load the new version beside the old and swap it in; it serves from now on."""
    registry = state.registry
    if own.own_folder is not None:
        settings = state.settings
        source = teaching.version_source(base_source(settings), name, version, where)
        registry.repository.put(
            RepoModel(
                name=name,
                versions={version: source},
                available=own.store.versions(name),
                policy=replace(policy(settings), max_batch_size=own.store.max_batch),
                timeout_s=settings.timeout_s,
            )
        )
    try:
        entry = await registry.load(name)
    except BaseException:
        # Nothing half-made stays behind: the version that failed to load is removed.
        own.store.drop(name, version)
        if own.own_folder is not None:
            registry.repository.remove(name)
        raise
    if state.workers is not None:
        # The other workers read the same repository folder: each loads the new version.
        await state.workers.broadcast("load", name)
    return registry.describe(entry)
