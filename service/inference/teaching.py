"""Classifiers taught by example: the version folders a running server writes, with their examples.

    ROOT/<name>/config.toml             Keras runtime, softmax head (written with version 1)
    ROOT/<name>/<v>/model.keras         base + fitted head: one plain Keras model (safe_mode loads it)
    ROOT/<name>/<v>/labels.txt          the user's labels, in output order, any language
    ROOT/<name>/<v>/examples.npz        every example's embedding and label: the next post extends them
    ROOT/<name>/<v>/classifier.json     base, layer, head and accuracy: marks a taught classifier

ROOT is the model repository when the server has one (its poll, and every worker, sees new
versions there), else a folder the server owns for its lifetime. A version is built in a hidden
folder and renamed into place, so no reader ever sees half of one.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kerasserve.service.errors import InvalidRequest
from kerasserve.service.inference.catalogue import model_names, normalize
from kerasserve.service.inference.fitting import FittedHead, keras_head
from kerasserve.service.inference.source import ModelSource

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MARKER = "classifier.json"
EXAMPLES = "examples.npz"
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
MAX_LABEL_CHARS = 100
# The largest batch a taught classifier serves (at most the server's): warming buckets up to 32
# took 11.3 s of a 15 s teach on 2 busy cores; up to 8, the load is a few seconds.
MAX_BATCH = 8

CONFIG = """\
# Written by POST /v1/classifiers/{name} (base {base}): a head fitted on examples.
# The Keras runtime serves it at once; an OpenVINO export would take longer than the fit.
runtime = "keras"
precision = "fp32"
output_kind = "softmax"

[batching]
# Every bucket is warmed before the version serves: up to 8 keeps that to seconds (batch 4 or
# less served best on 2 cores); raise it here for a busy classifier on a bigger machine.
max_batch_size = {max_batch}
calibrate = false
tune = false
"""


def check_name(name: str) -> None:
    """A classifier's name is a folder name and a URL segment: ASCII letters, digits, `_.-`."""
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidRequest(
            f"invalid classifier name {shown!r}: use 1-64 ASCII letters, digits, '_', '.' or "
            "'-', starting with a letter or digit (labels may be in any language; names not)",
            extra={"name": shown},
        )
    if normalize(name) in {normalize(n) for n in model_names()}:
        raise InvalidRequest(
            f"{name!r} is the name of a keras.applications model; name the classifier after "
            "its classes (e.g. 'fruit' or 'my-cats')",
            extra={"name": name},
        )


def check_labels(raw: str | None, count: int) -> list[str]:
    """The form field `labels`: a JSON array of strings, one per uploaded photo, in order."""
    if raw is None:
        raise InvalidRequest(
            f'the form has no field "labels": send a JSON array with one label per photo, in '
            f'upload order (e.g. ["cat", "dog", ...]; {count} photos sent)'
        )
    try:
        labels = json.loads(raw)
    except json.JSONDecodeError as exc:
        hint = " (a form field is read up to 1,000 characters)" if len(raw) >= 1000 else ""
        raise InvalidRequest(
            f'the field "labels" is not valid JSON ({exc.msg} at character {exc.pos}){hint}: '
            f'send a JSON array of strings, e.g. ["cat", "dog"]; got {raw[:80]!r}'
        ) from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InvalidRequest(
            f'the field "labels" must be a JSON array of strings, one per photo; got {raw[:80]!r}'
        )
    if len(labels) != count:
        raise InvalidRequest(
            f"{len(labels)} labels for {count} photos: send exactly one label per photo, in "
            "upload order",
            extra={"labels": len(labels), "images": count},
        )
    cleaned = [label.strip() for label in labels]
    for i, label in enumerate(cleaned):
        if not label or len(label) > MAX_LABEL_CHARS or any(c in label for c in "\t\r\n"):
            raise InvalidRequest(
                f"label {i + 1} ({labels[i][:40]!r}) must be 1-{MAX_LABEL_CHARS} characters "
                "on one line, without tabs",
                extra={"index": i},
            )
    return cleaned


@dataclass(frozen=True)
class Stored:
    """The newest version of a taught classifier: what a new post extends."""

    version: int
    base: str
    layer: str
    embeddings: np.ndarray
    labels: list[str]


class ClassifierStore:
    """Taught classifiers under `root`, one folder per name, one sub-folder per version."""

    def __init__(self, root: Path, max_batch: int = MAX_BATCH) -> None:
        self.root = root
        self.max_batch = max_batch

    def folder(self, name: str) -> Path:
        return self.root / name

    def versions(self, name: str) -> list[int]:
        folder = self.folder(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def is_classifier(self, name: str) -> bool:
        return any((self.folder(name) / str(v) / MARKER).is_file() for v in self.versions(name))

    def latest(self, name: str) -> Stored | None:
        """The newest version taught here (None: none, or the folder holds another model)."""
        for version in reversed(self.versions(name)):
            where = self.folder(name) / str(version)
            if not (where / MARKER).is_file():
                continue
            meta = json.loads((where / MARKER).read_text(encoding="utf-8"))
            with np.load(where / EXAMPLES, allow_pickle=False) as data:
                embeddings = np.asarray(data["embeddings"], dtype=np.float32)
                labels = [str(x) for x in data["labels"]]
            return Stored(version, str(meta["base"]), str(meta["layer"]), embeddings, labels)
        return None

    def write(
        self,
        name: str,
        trunk: Any,
        family: str,
        layer: str,
        head: FittedHead,
        embeddings: np.ndarray,
        labels: list[str],
        meta: dict[str, Any],
    ) -> tuple[int, Path]:
        """Build base + head as one Keras model and write the next version, atomically."""
        folder = self.folder(name)
        version = max(self.versions(name), default=0) + 1
        fresh = not folder.is_dir()
        staging = (
            self.root / f".new-{name}-{uuid.uuid4().hex[:8]}"
            if fresh
            else folder / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        )
        where = staging / str(version) if fresh else staging
        where.mkdir(parents=True)
        try:
            if fresh:
                (staging / "config.toml").write_text(
                    CONFIG.format(name=name, base=family, max_batch=self.max_batch),
                    encoding="utf-8",
                )
            save_model(trunk, layer, head, family, where / MODEL_FILE)
            (where / LABELS_FILE).write_text("\n".join(head.classes) + "\n", encoding="utf-8")
            np.savez(
                where / EXAMPLES,
                embeddings=np.asarray(embeddings, dtype=np.float32),
                labels=np.array(labels, dtype=str),
            )
            record = {"base": family, "layer": layer, "version": version, **meta}
            (where / MARKER).write_text(
                json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8"
            )
            staging.rename(folder if fresh else folder / str(version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version, folder / str(version)

    def drop(self, name: str, version: int) -> None:
        """Remove one version (one that failed to load); the whole folder if it was the only."""
        if self.versions(name) == [version]:
            self.retire(name)
        else:
            shutil.rmtree(self.folder(name) / str(version), ignore_errors=True)

    def retire(self, name: str) -> list[int]:
        """Remove the classifier's folder (renamed aside first: a poll sees it gone at once)."""
        versions = self.versions(name)
        aside = self.root / f".retired-{name}-{int(time.time())}-{uuid.uuid4().hex[:6]}"
        self.folder(name).rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
        return versions


def save_model(trunk: Any, layer: str, head: FittedHead, family: str, path: Path) -> None:
    """`trunk` up to `layer`, average-pooled (as the feature path pools it), then the head.

    The model is named after its base (`MobileNetV2_classifier`), which is how the loader
    finds the base's preprocessing when it serves the file."""
    import keras

    pooled = keras.layers.GlobalAveragePooling2D(name="examples_pool")(
        trunk.get_layer(layer).output
    )
    model = keras.Model(trunk.inputs, keras_head(head, pooled), name=f"{family}_classifier")
    model.save(path)


def version_source(base: ModelSource, name: str, version: int, where: Path) -> ModelSource:
    """How a version kept outside a repository is served (what config.toml says inside one)."""
    return replace(
        base,
        name=name,
        version=version,
        family=None,
        model_file=where / MODEL_FILE,
        labels_file=where / LABELS_FILE,
        labels_language="en",
        extra_labels=(),
        preprocess=None,
        output_kind="softmax",
        runtime="keras",
        precision="fp32",
        calibrate_batch=False,
        tune_batch=False,
    )
