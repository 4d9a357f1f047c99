"""The set of served models, found by any spelling of their names."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace

from batching import BatchObserver, BatchPolicy
from service.errors import ModelLoadError, ModelNotFound
from service.inference.catalogue import model_names, normalize, resolve_name
from service.inference.models import ModelSource, ServedModel

logger = logging.getLogger("kerasserve.registry")


class Registry:
    """Served models in the order they were asked for; the first is the default."""

    def __init__(self) -> None:
        self._models: dict[str, ServedModel] = {}

    def add(self, model: ServedModel) -> None:
        self._models[model.name] = model

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    @property
    def default(self) -> ServedModel | None:
        return next(iter(self._models.values()), None)

    def get(self, name: str) -> ServedModel:
        """The model called `name` (ignoring case and punctuation) or `ModelNotFound`."""
        key = normalize(name)
        for model in self._models.values():
            if key in (normalize(model.name), normalize(model.family or "")):
                return model
        try:
            return self._models[resolve_name(name, list(self._models))]
        except ModelNotFound as exc:
            served = ", ".join(self._models) or "none"
            exc.message = f"{exc.message.split(' `GET', 1)[0]} This server serves: {served}."
            exc.args = (exc.message,)
            raise

    @property
    def ready(self) -> bool:
        return bool(self._models) and all(m.state.value == "ready" for m in self._models.values())

    async def load_all(self) -> None:
        for model in self:
            await model.load()

    async def aclose(self, timeout: float | None) -> None:
        for model in self:
            await model.aclose(timeout)


def build_registry(
    sources: list[ModelSource],
    policy: BatchPolicy,
    timeout_s: float,
    observer_for: Callable[[str], BatchObserver] | None = None,
) -> Registry:
    """Resolve every source's canonical name (unknown names fail here, before any build)."""
    registry = Registry()
    known = model_names()
    for source in sources:
        name = source.name if source.model_file else resolve_name(source.name, known)
        if name in {m.name for m in registry}:
            raise ModelLoadError(f"model {name!r} is asked for twice")
        observer = observer_for(name) if observer_for else None
        registry.add(ServedModel(replace(source, name=name), policy, timeout_s, observer))
    return registry
