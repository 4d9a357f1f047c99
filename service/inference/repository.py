"""Where models come from: server flags (a repository of one per flag) or a model repository.

A repository is the layout TF Serving and Triton users know:

    DIR/
      cats/                 one model, named by its folder
        config.toml         optional: settings for this model (validated, see ModelConfig)
        labels.txt
        1/model.keras       version 1: a .keras file,
        2/model.keras       version 2 (served by default: the newest loaded)
      MobileNetV2/
        3/weights.h5        or a weights file for a keras.applications model
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kerasserve.batching import BatchPolicy
from kerasserve.service.errors import InvalidConfig, ModelLoadError, ModelNotFound
from kerasserve.service.inference.catalogue import PreprocessMode, model_names, normalize
from kerasserve.service.inference.source import ModelSource, base_source, model_sources

if TYPE_CHECKING:
    from kerasserve.service.settings import Settings

logger = logging.getLogger("kerasserve.repository")

CONFIG_NAME = "config.toml"
WEIGHT_SUFFIXES = (".h5", ".hdf5")


class BatchingConfig(BaseModel):
    """Batching limits of one model (unset: the server's flags)."""

    model_config = ConfigDict(extra="forbid")
    max_batch_size: Annotated[int, Field(ge=1, le=1024)] | None = None
    max_wait_ms: Annotated[float, Field(ge=0, le=10_000)] | None = None
    max_queue: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    calibrate: bool | None = None
    tune: bool | None = None


class VersionPolicy(BaseModel):
    """Which version folders are served: the newest `count`, all of them, or those listed."""

    model_config = ConfigDict(extra="forbid")
    policy: Literal["latest", "all", "specific"] = "latest"
    count: Annotated[int, Field(ge=1)] = 1
    versions: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _specific_needs_versions(self) -> VersionPolicy:
        if self.policy == "specific" and not self.versions:
            raise ValueError("policy 'specific' needs a non-empty `versions` list, e.g. [1, 3]")
        return self

    def select(self, available: list[int]) -> list[int]:
        ordered = sorted(available)
        if self.policy == "all":
            return ordered
        if self.policy == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.count :]


class ModelConfig(BaseModel):
    """`DIR/<model>/config.toml`. Every key is optional; set keys override the server's flags."""

    model_config = ConfigDict(extra="forbid")
    family: str | None = Field(
        default=None, description="A keras.applications model (default: the folder's name)."
    )
    file: str | None = Field(
        default=None,
        description="The .keras file in each version folder (default: the one .keras file there).",
    )
    weights: str | None = Field(
        default=None,
        description="auto | imagenet | none, when a version folder has no weights file.",
    )
    preprocess: PreprocessMode | None = None
    output_kind: Literal["auto", "softmax", "logits", "binary", "multi_label"] | None = None
    labels: str | dict[str, str] | None = Field(
        default=None,
        description="A labels file, or a table language -> file (the first is the default).",
    )
    runtime: Literal["auto", "keras", "openvino"] | None = None
    precision: Literal["auto", "fp32", "bf16", "int8"] | None = None
    calibration_images: str | None = None
    int8_min_top1: Annotated[float, Field(ge=0, le=1)] | None = None
    int8_min_top5: Annotated[float, Field(ge=0, le=1)] | None = None
    safe_mode: bool | None = None
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    versions: VersionPolicy = Field(default_factory=VersionPolicy)


class ConfigError(InvalidConfig):
    """A config that fails validation; the message names the file, the key and what was expected."""


def read_config(path: Path) -> ModelConfig:
    """Read and validate a model's `config.toml` (a missing file means every default)."""
    if not path.is_file():
        return ModelConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            got = error.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            problems.append(f"{key}: {error['msg']}{shown}")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from exc


@dataclass(frozen=True)
class Defaults:
    """What the server's flags say, for every model that does not say otherwise."""

    source: ModelSource
    policy: BatchPolicy
    timeout_s: float


@dataclass
class RepoModel:
    """One model as the repository describes it: the versions to serve, or why it cannot."""

    name: str
    versions: dict[int, ModelSource] = field(default_factory=dict)
    available: list[int] = field(default_factory=list)
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    timeout_s: float = 30.0
    error: str | None = None
    family: str | None = None
    config_path: Path | None = None
    # `timestamp()` of the model's folder when it was read: a load that failed is tried again
    # once it changes (a version folder that appeared before its files were all written).
    stamp: tuple[int, int] | None = None


class Repository:
    """Models listed by the server's flags: one version each, fixed for the process' life."""

    strict = True  # a model that fails to load stops the server, as it always has

    def __init__(self, models: list[RepoModel]) -> None:
        self._models = {m.name: m for m in models}

    def scan(self) -> list[RepoModel]:
        return list(self._models.values())

    def find(self, name: str) -> RepoModel:
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(f"no model {name!r} in this server's models") from None

    def put(self, model: RepoModel) -> None:
        """List `model` (a classifier taught on this server, kept in a folder of its own), or
        replace what was listed under its name; `Registry.load(name)` then serves it."""
        self._models[model.name] = model

    def remove(self, name: str) -> None:
        """Stop listing `name` (a retired classifier); nothing else is ever removed."""
        self._models.pop(name, None)


class DirectoryRepository(Repository):
    """`DIR/<model>/<version>/`: scanned again on every call, so new versions and models
    appear; a model's folder is read again only when its timestamp changed (Triton's
    `ModelTimestamp`: the newest modification time of anything in it, and what is in it),
    so a scan of an unchanged repository costs a few `stat` calls and parses nothing."""

    strict = False  # one model that fails does not stop the others

    def __init__(self, root: Path, defaults: Defaults) -> None:
        self.root = root
        self.defaults = defaults
        self._read_at: dict[str, tuple[tuple[int, int], RepoModel]] = {}
        self.reads = 0  # folders parsed (config, versions, files): for tests and logs

    def scan(self) -> list[RepoModel]:
        if not self.root.is_dir():
            raise ConfigError(f"--model-repository {str(self.root)!r} is not a directory")
        folders = list(self._folders())
        names = {path.name for path in folders}
        for gone in [name for name in self._read_at if name not in names]:
            del self._read_at[gone]
        return [self._cached(path) for path in folders]

    def find(self, name: str) -> RepoModel:
        """`name` read afresh (an explicit load re-reads its config whatever the timestamp)."""
        for path in self._folders():
            if path.name == name:
                self._read_at.pop(name, None)
                return self._cached(path)
        raise ModelNotFound(f"no model folder {name!r} in the repository {str(self.root)!r}")

    def _cached(self, folder: Path) -> RepoModel:
        stamp = timestamp(folder)
        hit = self._read_at.get(folder.name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        model = self._read(folder)
        model.stamp = stamp
        self.reads += 1
        self._read_at[folder.name] = (stamp, model)
        return model

    def _folders(self) -> Iterator[Path]:
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and not path.name.startswith((".", "_")):
                yield path

    def _read(self, folder: Path) -> RepoModel:
        name = folder.name
        config_path = folder / CONFIG_NAME
        model = RepoModel(name=name, config_path=config_path)
        try:
            config = read_config(config_path)
            return self._resolve(folder, config, model)
        except ConfigError as exc:
            model.error = str(exc)
            return model

    def _resolve(self, folder: Path, config: ModelConfig, model: RepoModel) -> RepoModel:
        d = self.defaults
        batching = config.batching
        model.policy = replace(
            d.policy,
            max_batch_size=batching.max_batch_size or d.policy.max_batch_size,
            max_wait_s=(
                batching.max_wait_ms / 1e3
                if batching.max_wait_ms is not None
                else d.policy.max_wait_s
            ),
            max_queue=batching.max_queue or d.policy.max_queue,
        )
        model.timeout_s = batching.timeout_s or d.timeout_s
        model.available = sorted(
            int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()
        )
        if not model.available:
            raise ConfigError(
                f"{folder}: no version folder (expected {folder}/1/ holding a .keras file or "
                "a weights file)"
            )
        labels_file, extra_labels, language = self._labels(folder, config)
        base = replace(
            d.source,
            name=model.name,
            labels_file=labels_file,
            labels_language=language,
            extra_labels=extra_labels,
            preprocess=config.preprocess or d.source.preprocess,
            output_kind=config.output_kind or d.source.output_kind,
            safe_mode=d.source.safe_mode if config.safe_mode is None else config.safe_mode,
            runtime=config.runtime or d.source.runtime,
            precision=config.precision or d.source.precision,
            calibration_dir=(
                _inside(folder, config.calibration_images, "calibration_images")
                if config.calibration_images
                else d.source.calibration_dir
            ),
            int8_min_top1=(
                d.source.int8_min_top1 if config.int8_min_top1 is None else config.int8_min_top1
            ),
            int8_min_top5=(
                d.source.int8_min_top5 if config.int8_min_top5 is None else config.int8_min_top5
            ),
            calibrate_batch=(
                d.source.calibrate_batch if batching.calibrate is None else batching.calibrate
            ),
            tune_batch=d.source.tune_batch if batching.tune is None else batching.tune,
        )
        for version in config.versions.select(model.available):
            model.versions[version] = self._version(folder, version, config, base, model)
        if not model.versions:
            raise ConfigError(
                f"{folder / CONFIG_NAME}: versions: the policy selects none of the version "
                f"folders {model.available}"
            )
        return model

    def _version(
        self, folder: Path, version: int, config: ModelConfig, base: ModelSource, model: RepoModel
    ) -> ModelSource:
        where = folder / str(version)
        files = sorted(p for p in where.iterdir() if p.is_file())
        if config.labels is None and (where / "labels.txt").is_file():
            # A version with labels of its own (`kerasserve train` writes one per version: a
            # retrained model may have other classes than the version it replaces).
            base = replace(base, labels_file=where / "labels.txt", extra_labels=())
        keras_files = [p for p in files if p.suffix == ".keras"]
        if config.file is not None or (keras_files and config.family is None):
            if config.file is not None:
                path = _inside(where, config.file, "file")
            elif len(keras_files) > 1:
                names = [p.name for p in keras_files]
                raise ConfigError(
                    f"{where}: several .keras files {names}; name one with `file = ...` "
                    f"in {folder / CONFIG_NAME}"
                )
            else:
                path = keras_files[0]
            return replace(base, version=version, model_file=path)
        family = config.family or model.name
        known = {normalize(n): n for n in model_names()}
        if normalize(family) not in known:
            key = "family" if config.family else "(folder name)"
            raise ConfigError(
                f"{folder / CONFIG_NAME}: {key}: {family!r} is not a keras.applications "
                f'model and {where} holds no .keras file; set family = "MobileNetV2" (see '
                "`kerasserve models`) or put a .keras file in the version folder"
            )
        model.family = known[normalize(family)]
        weight_files = [p for p in files if p.name.endswith(WEIGHT_SUFFIXES)]
        if len(weight_files) > 1:
            raise ConfigError(f"{where}: several weights files {[p.name for p in weight_files]}")
        weights = (
            str(weight_files[0])
            if weight_files
            else (config.weights or self.defaults.source.weights)
        )
        return replace(base, version=version, family=model.family, weights=weights)

    @staticmethod
    def _labels(
        folder: Path, config: ModelConfig
    ) -> tuple[Path | None, tuple[tuple[str, Path], ...], str]:
        if config.labels is None:
            found = folder / "labels.txt"
            return (found if found.is_file() else None), (), "en"
        if isinstance(config.labels, str):
            return _inside(folder, config.labels, "labels"), (), "en"
        items = list(config.labels.items())
        if not items:
            raise ConfigError(f"{folder / CONFIG_NAME}: labels: the table is empty")
        paths = [(lang, _inside(folder, path, f"labels.{lang}")) for lang, path in items]
        (language, first), rest = paths[0], paths[1:]
        return first, tuple(rest), language


def timestamp(folder: Path) -> tuple[int, int]:
    """(newest modification time in ns, number of entries) of everything under `folder`:
    a file added, removed, renamed or rewritten changes it."""
    newest, count = folder.stat().st_mtime_ns, 0
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.stat().st_mtime_ns)
        except FileNotFoundError:  # removed while we looked: the next scan sees the change
            continue
        count += 1
    return newest, count


def _inside(base: Path, relative: str, key: str) -> Path:
    """`relative` resolved against `base` (a model or version folder); it must exist inside
    the model's folder."""
    model_folder = base.parent if base.name.isdigit() else base
    path = (base / relative).resolve()
    if not path.is_relative_to(model_folder.resolve()) or not path.exists():
        raise ConfigError(
            f"{model_folder / CONFIG_NAME}: {key}: {relative!r} must name an existing path "
            f"inside {model_folder}"
        )
    return path


def build_repository(settings: Settings, policy: BatchPolicy) -> Repository:
    """The model repository, or the repository of one per flag (`--model`, `--model-file`)."""
    if settings.model_repository is not None:
        return DirectoryRepository(
            settings.model_repository, Defaults(base_source(settings), policy, settings.timeout_s)
        )
    models: list[RepoModel] = []
    for source in model_sources(settings):
        if source.name in {m.name for m in models}:
            raise ModelLoadError(f"model {source.name!r} is asked for twice")
        family = None if source.model_file else source.name
        models.append(
            RepoModel(
                name=source.name,
                versions={source.version: source},
                available=[source.version],
                policy=policy,
                timeout_s=settings.timeout_s,
                family=family,
            )
        )
    return Repository(models)
