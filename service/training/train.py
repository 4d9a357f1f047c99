"""One training run: check the photos, fit the head (then the top layers), measure, publish.

Keras does the work: `image_dataset_from_directory` reads the photos, `fit` trains with its own
callbacks (early stopping on the held-out split) and progress output. Stage 1 trains a new head
on the frozen base; stage 2 (`fine_tune_layers` > 0) unfreezes the base's top layers, BatchNorm
excepted, and trains on with SGD at a low learning rate, as the Keras fine-tuning guide does.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerasserve.service.errors import ModelNotFound
from kerasserve.service.training import dataset, model, publish, report
from kerasserve.service.training.errors import InvalidDataset, InvalidOption

Say = Callable[[str], None]


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class TrainOptions:
    """Everything `kerasserve train` takes; defaults are the command's."""

    data_dir: Path
    repository: Path
    name: str
    base: str = "MobileNetV2"
    epochs: int = 10
    fine_tune_layers: int = 0
    weights: str = "auto"
    validation_split: float = 0.2
    seed: int = 1337
    augment: bool = True
    image_size: int | None = None
    batch_size: int = 16
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-4
    patience: int = 3
    random_base: str = "unit-norm"
    verbose: int | str = "auto"


@dataclass
class TrainResult:
    version: int
    folder: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def check_options(options: TrainOptions) -> None:
    publish.check_name(options.name)
    if not 0 < options.validation_split < 1:
        raise InvalidOption(
            f"--validation-split {options.validation_split} must be between 0 and 1 "
            "(exclusive), e.g. 0.2: early stopping and the measured accuracy need held-out photos"
        )
    if options.epochs < 1:
        raise InvalidOption(f"--epochs {options.epochs} must be at least 1")
    if options.fine_tune_layers < 0:
        raise InvalidOption(
            f"--fine-tune-layers {options.fine_tune_layers} must be 0 (head only) or more"
        )
    if options.random_base not in model.RANDOM_BASE_ROUTES:
        raise InvalidOption(
            f"--random-base {options.random_base!r}: expected one of "
            f"{', '.join(model.RANDOM_BASE_ROUTES)}"
        )
    if options.image_size is not None and options.image_size < 32:
        raise InvalidOption(f"--image-size {options.image_size} must be at least 32 pixels")


def train(options: TrainOptions, say: Say = _stdout) -> TrainResult:
    """Run the whole recipe and publish the next version of `options.name`."""
    started = time.perf_counter()
    check_options(options)
    found = dataset.scan(options.data_dir)
    counts = ", ".join(f"{label}: {n}" for label, n in found.counts.items())
    say(f"{found.total} photos in {len(found.classes)} classes ({counts})")
    for path, why in found.unreadable:
        say(f"skipped unreadable file {str(path)!r}: {why}")
    if found.unreadable:
        say(f"skipped {len(found.unreadable)} unreadable file(s)")
    held_out = int(options.validation_split * found.total)
    if held_out < 1 or found.total - held_out < len(found.classes):
        raise InvalidDataset(
            f"{found.total} photos with --validation-split {options.validation_split} hold out "
            f"{held_out} and train on {found.total - held_out}; add photos (at least "
            f"{len(found.classes)} to train on and 1 to hold out) or change --validation-split"
        )
    try:
        from kerasserve.service.inference import catalogue

        spec = catalogue.spec(options.base)
    except ModelNotFound as exc:
        raise InvalidOption(f"--base: {exc.message}") from exc
    size = options.image_size or spec.input_size[0]
    image_size = (size, size)
    with tempfile.TemporaryDirectory(prefix="kerasserve-train-") as tmp:
        staged = dataset.stage(found, Path(tmp) / "photos")
        trained, facts = _fit(options, spec, staged, found.classes, image_size, say)
    metrics = {
        "name": options.name,
        "base": spec.name,
        "image_size": list(image_size),
        "preprocess": spec.preprocess_mode,
        "weights": facts.pop("weights"),
        "classes": found.classes,
        "class_counts": found.counts,
        "photos": found.total,
        "unreadable": [{"path": str(p), "why": why} for p, why in found.unreadable],
        "dataset_fingerprint": found.fingerprint(),
        "validation_split": options.validation_split,
        "seed": options.seed,
        "augment": options.augment,
        **facts,
        "wall_s": round(time.perf_counter() - started, 2),
    }
    title = f"{options.name}: held-out accuracy {metrics['accuracy']:.3f}"

    def write(folder: Path) -> None:
        trained.save(folder / "model.keras")
        (folder / "labels.txt").write_text("\n".join(found.classes) + "\n", encoding="utf-8")
        report.confusion_png(metrics["confusion"], found.classes, title, folder / "confusion.png")
        text = json.dumps(metrics, indent=2, ensure_ascii=False) + "\n"
        (folder / "metrics.json").write_text(text, encoding="utf-8")

    version, folder = publish.publish(options.repository, options.name, write)
    say(
        f"published {folder}: held-out accuracy {metrics['accuracy']:.3f}, top-"
        f"{metrics['top_k']} {metrics['top_k_accuracy']:.3f} on {metrics['held_out_photos']} "
        f"photos; {metrics['wall_s']:.0f} s"
    )
    return TrainResult(version, folder, metrics)


def _fit(
    options: TrainOptions,
    spec: Any,
    staged: Path,
    classes: list[str],
    image_size: tuple[int, int],
    say: Say,
) -> tuple[Any, dict[str, Any]]:
    import keras

    keras.utils.set_random_seed(options.seed)
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        staged,
        labels="inferred",
        label_mode="int",
        class_names=classes,
        image_size=image_size,
        batch_size=options.batch_size,
        shuffle=True,
        seed=options.seed,
        validation_split=options.validation_split,
        subset="both",
    )
    base, base_weights = model.build_base(spec, options.weights, image_size)
    preprocess = model.preprocessing_layer(spec.preprocess_mode)
    if base_weights.warning:
        say(f"WARNING: {base_weights.warning}")
    unit_norm = None
    if base_weights.kind == "random":
        base_weights.random_base = options.random_base
        pixels = _first_photos(train_ds, model.BN_STATISTICS_PHOTOS)
        if options.random_base == "unit-norm":
            unit_norm = model.feature_scale(base, pixels, preprocess)
            say(
                "random base: BatchNorm statistics kept (features ~"
                f"{unit_norm:.1e} long), the head fed unit-length features"
            )
        else:
            used = model.set_batchnorm_statistics(base, pixels, preprocess)
            base_weights.bn_statistics_from_photos = used
            say(f"random base: BatchNorm statistics set from {used} training photos")
    base.trainable = False
    net = model.classifier(base, preprocess, len(classes), options.name, unit_norm=unit_norm)
    fit_ds = train_ds
    if options.augment:
        augment = keras.Sequential(
            [
                keras.layers.RandomFlip("horizontal", seed=options.seed),
                keras.layers.RandomRotation(0.05, seed=options.seed),
                keras.layers.RandomZoom(0.1, seed=options.seed),
            ],
            name="augment",
        )
        fit_ds = train_ds.map(lambda x, y: (augment(x, training=True), y))
    stages: list[dict[str, Any]] = []
    say(f"stage 1: training a new head on the frozen {spec.name} ({len(classes)} classes)")
    net.compile(
        optimizer=keras.optimizers.Adam(options.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stages.append(_stage("head", net, fit_ds, val_ds, options))
    if options.fine_tune_layers > 0:
        unfrozen = model.unfreeze_top(base, options.fine_tune_layers)
        say(
            f"stage 2: fine-tuning the top {options.fine_tune_layers} layers of {spec.name} "
            f"({unfrozen} with weights; BatchNorm frozen), SGD at {options.fine_tune_learning_rate}"
        )
        net.compile(
            optimizer=keras.optimizers.SGD(options.fine_tune_learning_rate, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        stages.append(_stage("fine_tune", net, fit_ds, val_ds, options))
        stages[-1]["layers_unfrozen"] = unfrozen
    probabilities, truth = [], []
    for x, y in val_ds:
        probabilities.append(np.asarray(net.predict_on_batch(x)))
        truth.append(np.asarray(y))
    measured = report.measure(np.concatenate(probabilities), np.concatenate(truth), classes)
    facts = {
        "weights": base_weights.as_dict(),
        "epochs": sum(s["epochs_run"] for s in stages),
        "stages": stages,
        **measured,
    }
    return net, facts


def _stage(name: str, net: Any, fit_ds: Any, val_ds: Any, options: TrainOptions) -> dict[str, Any]:
    import keras

    began = time.perf_counter()
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=options.patience, restore_best_weights=True
    )
    history = net.fit(
        fit_ds,
        validation_data=val_ds,
        epochs=options.epochs,
        callbacks=[stopper],
        verbose=options.verbose,
        shuffle=False,  # image_dataset_from_directory reshuffles every epoch already
    ).history
    return {
        "stage": name,
        "epochs_run": len(history.get("loss", [])),
        "epochs_asked": options.epochs,
        "stopped_early": len(history.get("loss", [])) < options.epochs,
        "val_accuracy": [round(float(v), 4) for v in history.get("val_accuracy", [])],
        "wall_s": round(time.perf_counter() - began, 2),
    }


def _first_photos(train_ds: Any, count: int) -> np.ndarray:
    """Up to `count` unaugmented training photos (float 0-255), for the BatchNorm statistics."""
    batches, total = [], 0
    for x, _ in train_ds:
        batches.append(np.asarray(x))
        total += len(batches[-1])
        if total >= count:
            break
    return np.concatenate(batches)[:count]
