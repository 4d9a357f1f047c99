"""The served models by name, each with its loaded versions; loads, swaps and unloads them.

A new version loads and warms beside the one serving; the name then moves to it in one
assignment on the event loop (atomic for every request that looks it up afterwards), and
the old version finishes every request it accepted before it is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kerasserve.batching import BatchObserver
from kerasserve.schemas import ModelInfo, ModelState
from kerasserve.schemas.models import RepositoryModel
from kerasserve.service.errors import (
    ModelLoadError,
    ModelNotFound,
    ModelUnavailable,
    NotReady,
    TooManyModels,
)
from kerasserve.service.inference import loading
from kerasserve.service.inference.catalogue import normalize, resolve_name
from kerasserve.service.inference.loaded import Decoder, LoadedModel
from kerasserve.service.inference.repository import ConfigError, RepoModel, Repository

logger = logging.getLogger("kerasserve.registry")


@dataclass(eq=False)
class Entry:
    """One model name: the versions serving it and what became of its last load."""

    name: str
    family: str | None = None
    versions: dict[int, LoadedModel] = field(default_factory=dict)
    state: ModelState = ModelState.LOADING
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # What the repository showed when a poll's load failed (versions, config error, folder
    # timestamp): the load is not retried every poll, only once one of them changes.
    failed_for: tuple[frozenset[int], str | None, tuple[int, int] | None] | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The version requests by name reach: the newest loaded."""
        return self.versions[max(self.versions)] if self.versions else None


class Registry:
    """Served models in the order the repository lists them; the first is the default."""

    def __init__(
        self,
        repository: Repository,
        decoder: Decoder,
        *,
        max_loaded: int | None = None,
        drain_timeout_s: float = 30.0,
        observer_for: Callable[[str], BatchObserver] | None = None,
    ) -> None:
        self.repository = repository
        self.decoder = decoder
        self.max_loaded = max_loaded
        self.drain_timeout_s = drain_timeout_s
        self._observer_for = observer_for
        self._entries: dict[str, Entry] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._scanned: tuple[float, list[RepoModel]] | None = None

    # The index answers from a scan at most this old: a client polling it (or many at once)
    # does not walk the repository per request; polls and loads scan afresh.
    INDEX_MAX_AGE_S = 1.0

    def _scan(self) -> list[RepoModel]:
        listed = self.repository.scan()
        self._scanned = (time.monotonic(), listed)
        return listed

    # -- lookups --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[LoadedModel]:
        """Every loaded version of every model."""
        return iter([m for e in list(self._entries.values()) for m in e.versions.values()])

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    @property
    def default(self) -> LoadedModel | None:
        name = self.default_name
        return self._entries[name].current if name else None

    @property
    def default_name(self) -> str | None:
        """The first model listed that serves (else the first listed): the classic `/predict`
        answers with it."""
        serving = (name for name, e in self._entries.items() if e.versions)
        return next(serving, None) or next(iter(self._entries), None)

    @property
    def loaded_count(self) -> int:
        return sum(len(e.versions) for e in self._entries.values())

    def entry(self, name: str) -> Entry:
        """The entry called `name` (ignoring case and punctuation, or by its family)."""
        key = normalize(name)
        for entry in self._entries.values():
            if key in (normalize(entry.name), normalize(entry.family or "")):
                return entry
        try:
            return self._entries[resolve_name(name, list(self._entries))]
        except ModelNotFound as exc:
            served = ", ".join(self._entries) or "none"
            exc.message = f"{exc.message.split(' `GET', 1)[0]} This server serves: {served}."
            exc.args = (exc.message,)
            raise

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The loaded model answering `name` (its newest version, or `version`)."""
        entry = self.entry(name)
        if version is not None:
            found = entry.versions.get(version)
            if found is None:
                loaded = ", ".join(map(str, sorted(entry.versions))) or "none"
                raise ModelNotFound(
                    f"model {entry.name} has no loaded version {version} (loaded: {loaded})"
                )
            return found
        current = entry.current
        if current is not None:
            return current
        if entry.state == ModelState.FAILED:
            raise ModelUnavailable(f"model {entry.name} failed to load: {entry.error}")
        if entry.state in (ModelState.UNAVAILABLE, ModelState.UNLOADING):
            why = f" ({entry.error})" if entry.error else ""
            raise ModelNotFound(
                f"model {entry.name} is unloaded{why}; POST /v1/models/{entry.name}/load loads it"
            )
        raise NotReady(f"model {entry.name} is loading; retry shortly")

    def use(
        self, name: str, version: int | None = None
    ) -> contextlib.AbstractContextManager[LoadedModel]:
        """`with registry.use(name) as model:` the model, held for the whole request: found and
        leased in one step, so a swap or unload that comes later waits for this request."""
        return self.get(name, version).lease()

    @property
    def ready(self) -> bool:
        """Every model has a version serving (failed or unloaded ones do not count against)."""
        entries = self._entries.values()
        return any(e.versions for e in entries) and not any(
            e.state == ModelState.LOADING and not e.versions for e in entries
        )

    def describe(self, entry: Entry) -> ModelInfo:
        current = entry.current
        is_default = entry.name == self.default_name
        if current is None:
            return ModelInfo(
                name=entry.name,
                family=entry.family,
                state=entry.state,
                error=entry.error,
                default=is_default,
            )
        info = current.describe(default=is_default, versions=sorted(entry.versions))
        if entry.state != ModelState.READY:
            info.state = entry.state
        info.error = entry.error
        return info

    def index(self) -> list[RepositoryModel]:
        """The repository as it is now on disk, with what is loaded of it (Triton's index)."""
        rows = []
        if self._scanned is not None and time.monotonic() - self._scanned[0] < self.INDEX_MAX_AGE_S:
            listed = self._scanned[1]
        else:
            listed = self._scan()
        for repo_model in listed:
            entry = self._entries.get(repo_model.name)
            loaded = sorted(entry.versions) if entry else []
            rows.append(
                RepositoryModel(
                    name=repo_model.name,
                    available_versions=repo_model.available or sorted(repo_model.versions),
                    served_versions=sorted(repo_model.versions),
                    loaded_versions=loaded,
                    state=entry.state if entry else ModelState.UNAVAILABLE,
                    error=repo_model.error or (entry.error if entry else None),
                )
            )
        return rows

    # -- lifecycle ------------------------------------------------------------------------------
    async def load_all(self) -> None:
        """Load every model the repository lists. With flags (strict), a failure stops the
        server; from a directory, it marks that model `failed` (with its error, whatever
        raised it) and the others go on. Models past `--max-loaded-models` are listed
        `unavailable` with the reason, never left `loading`: the server is ready with the
        ones that fit."""
        listed = self._scan()
        for repo_model in listed:
            self._entries.setdefault(repo_model.name, Entry(repo_model.name, repo_model.family))
        for repo_model in listed:
            try:
                await self._load(repo_model, reload=True)
            except TooManyModels as exc:
                logger.warning("model %s not loaded: %s", repo_model.name, _message(exc))
            except Exception as exc:
                if self.repository.strict:
                    raise ModelLoadError(_message(exc)) from exc
                logger.error("model %s failed to load: %s", repo_model.name, _message(exc))

    async def load(self, name: str) -> Entry:
        """(Re)load `name` from the repository: its config read again, every version it
        selects loaded beside what serves, then swapped in."""
        repo_model = self.repository.find(self._repo_name(name))
        self._entries.setdefault(repo_model.name, Entry(repo_model.name, repo_model.family))
        await self._load(repo_model, reload=True)
        return self._entries[repo_model.name]

    async def sync(self) -> None:
        """Poll: load models and versions that appeared, retire those that went."""
        try:
            found = {m.name: m for m in self._scan()}
        except ConfigError as exc:
            logger.error("repository scan failed: %s", exc)
            return
        for name in [n for n in self._entries if n not in found]:
            logger.info("model %s left the repository; unloading", name)
            await self.unload(name, forget=True)
        for name, repo_model in found.items():
            entry = self._entries.get(name)
            if entry is not None and entry.state in (ModelState.UNAVAILABLE, ModelState.UNLOADING):
                continue  # unloaded on purpose: only an explicit load brings it back
            wanted = frozenset(repo_model.versions)
            seen = (wanted, repo_model.error, repo_model.stamp)
            if entry is not None and (
                (entry.versions and set(entry.versions) == wanted)
                # a load that failed is not retried every poll, only once something changes:
                # the versions, the config, or any file under the model's folder (a version
                # copied in while the poll looked is read again once its last file lands)
                or entry.failed_for == seen
            ):
                continue
            entry = self._entries.setdefault(name, Entry(name, repo_model.family))
            try:
                await self._load(repo_model, reload=False)
            except Exception as exc:
                entry.failed_for = seen
                logger.error("model %s failed to load: %s", name, _message(exc))

    async def unload(self, name: str, *, forget: bool = False) -> Entry:
        """Stop serving `name`: new requests get 404 at once; accepted ones finish first."""
        entry = self.entry(name)
        async with entry.lock:
            old = list(entry.versions.values())
            entry.versions = {}
            entry.state = ModelState.UNLOADING
            entry.error = None
            await asyncio.gather(*(m.retire(self.drain_timeout_s) for m in old))
            entry.state = ModelState.UNAVAILABLE
            if forget:
                self._entries.pop(entry.name, None)
            logger.info("unloaded %s (%d version(s) drained)", entry.name, len(old))
        return entry

    async def aclose(self, timeout: float | None) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        models = list(self)
        for entry in self._entries.values():
            entry.versions = {}
        await asyncio.gather(*(m.aclose(timeout) for m in models), return_exceptions=True)

    # -- inside ---------------------------------------------------------------------------------
    def _repo_name(self, name: str) -> str:
        try:
            return self.entry(name).name
        except ModelNotFound:
            return name  # a model not loaded yet: the repository knows it by its folder name

    async def _load(self, repo_model: RepoModel, *, reload: bool) -> None:
        entry = self._entries[repo_model.name]
        async with entry.lock:
            entry.family = repo_model.family or entry.family
            if repo_model.error is not None:
                if not entry.versions:
                    entry.state = ModelState.FAILED
                entry.error = repo_model.error
                raise ConfigError(repo_model.error)
            wanted = repo_model.versions
            to_load = sorted(v for v in wanted if reload or v not in entry.versions)
            try:
                self._check_capacity(entry, to_load)
            except TooManyModels as exc:
                if not entry.versions:
                    # Not loading, and never will by itself: listed with the reason.
                    entry.state = ModelState.UNAVAILABLE
                entry.error = f"not loaded: {exc.message}"
                raise
            if not entry.versions:
                entry.state = ModelState.LOADING
            fresh: dict[int, LoadedModel] = {}
            # The version serving now: a new one of the same architecture inherits its choices.
            previous = entry.current
            version = -1
            try:
                for version in to_load:
                    fresh[version] = await loading.load(
                        wanted[version],
                        repo_model.policy,
                        repo_model.timeout_s,
                        self.decoder,
                        self._observer_for(repo_model.name) if self._observer_for else None,
                        previous=previous,
                    )
            except BaseException as exc:
                await asyncio.gather(*(m.aclose(0) for m in fresh.values()))
                entry.error = f"version {version}: {_message(exc)}"
                if not entry.versions:
                    entry.state = ModelState.FAILED
                raise
            keep = {v: m for v, m in entry.versions.items() if v in wanted and v not in fresh}
            retired = [m for v, m in entry.versions.items() if v not in keep]
            entry.versions = {**keep, **fresh}  # the swap: one assignment on the event loop
            entry.state = ModelState.READY
            entry.error = None
            entry.failed_for = None
            if fresh or retired:
                logger.info(
                    "%s: serving versions %s (loaded %s, retiring %s)",
                    entry.name,
                    sorted(entry.versions),
                    sorted(fresh),
                    sorted(m.version for m in retired),
                )
            for model in retired:
                task = asyncio.create_task(model.retire(self.drain_timeout_s))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)

    def _check_capacity(self, entry: Entry, to_load: list[int]) -> None:
        if self.max_loaded is None or not to_load:
            return
        total = self.loaded_count + len(to_load)
        if total > self.max_loaded:
            loaded = ", ".join(
                f"{e.name} v{v}" for e in self._entries.values() for v in sorted(e.versions)
            )
            raise TooManyModels(
                f"loading {entry.name} version(s) {to_load} would hold {total} model versions in "
                f"memory (new versions load beside the ones serving), past --max-loaded-models "
                f"{self.max_loaded}; loaded now: {loaded or 'none'}. Unload one first "
                f"(POST /v1/models/{{model}}/unload) or raise the limit",
                extra={"loaded": self.loaded_count, "limit": self.max_loaded},
            )


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc)
