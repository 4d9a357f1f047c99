"""The INT8 accuracy gate on a TRAINED model, with its default thresholds, as the test meets it.

Random weights cannot show a gate passing (nothing to agree on), so this trains the colour and
texture classifier of tests/support/trained.py once per training seed, on the very photos of
tests/integration/test_precision.py's `model` fixture (tests/support/gate_photos.py: train 48 per class, seed 1; held-out 8
per class, seed 2; calibration 6 per class, seed 3, with the held-out photos in its
`holdout/`), and builds the server's own OpenVINO runtime on it (`make_runtime`, as
`--model-file ... --runtime openvino --calibration-images DIR --max-batch-size 8` loads it):
export, NNCF quantisation on `quantize.load_views` of the calibration photos with the default
preset, compiled with the f32 hint and the THROUGHPUT streams, and the gate's agreement with
FP32 Keras through the serving head on the held-out views (`_gate`; 22 per photo, 1408). The gate's thresholds
are opened (0, 0) only so that a failing seed still reports its figures; pass or fail is then
judged with the DEFAULT `quantize.Gate()` on the very figures the server would judge.

Per seed: held-out accuracy (64 photos, Keras) and on the 1408 held-out views, INT8 top-1
agreement (and how many views disagree), top-5 overlap, BF16 top-1 agreement where the CPU has
bf16, training seconds. `--repeat` trains each seed twice and reports whether the weights are
identical (is training deterministic?).

Run: `python -m bench.int8_gate_trained --seeds 0,1,2,3`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

MAX_BATCH_SIZE = 8  # the test's --max-batch-size


def gate_figures(
    model_path: Path, labels_path: Path, calibration: Path, precision: str
) -> dict[str, Any]:
    """The server's runtime for `precision` on the model file, with the gate opened; its gate
    figures (as cached by `_gate`) and whether the DEFAULT gate passes them."""
    from kerasserve.service.inference import heads, loading, quantize
    from kerasserve.service.inference.runtime import buckets_for
    from kerasserve.service.inference.runtime_factory import make_runtime
    from kerasserve.service.inference.source import ModelSource

    source = ModelSource(
        name="colours",
        model_file=model_path,
        labels_file=labels_path,
        runtime="openvino",
        precision=precision,
        calibration_dir=calibration,
    )
    built = loading._build_file(source)
    units = int(built.model.output_shape[-1])
    kind = loading._output_kind(source, built.model, units)
    head = heads.Head(kind, heads.sigmoid_applied(built.model))
    started = time.perf_counter()
    runtime: Any = make_runtime(
        "openvino",
        built.model,
        built.preprocess,
        built.preprocessing.mode,
        built.input_size,
        buckets_for(MAX_BATCH_SIZE),
        tolerance=source.tolerance,
        streams=source.streams,
        precision=precision,
        calibration_dir=calibration,
        gate=(0.0, 0.0),  # opened: a failing seed still reports; judged below with the defaults
        head=head,
    )
    seconds = time.perf_counter() - started
    (cached,) = runtime._directory.glob("gate-*.json")
    measured = quantize.Agreement(**json.loads(cached.read_text()))
    runtime.release()
    return {
        "top1": measured.top1_agreement,
        "top5": measured.top5_overlap,
        "differ": round((1 - measured.top1_agreement) * measured.images),
        "images": measured.images,
        "decided": measured.decided,
        "passes": quantize.Gate().passes(measured),
        "seconds": seconds,
    }


def view_accuracy(model_path: Path, calibration: Path, holdout: dict[str, list[Path]]) -> float:
    """FP32 Keras accuracy on the gate's held-out views (how far from a boundary they lie)."""
    import keras
    from keras.applications import mobilenet_v2

    from kerasserve.service.inference import quantize
    from tests.support import trained

    photos = quantize.holdout_set(quantize.photo_set(calibration), calibration)
    label_of = {p.name: i for i, c in enumerate(trained.CLASSES) for p in holdout[c]}
    pixels = quantize.load_views(photos, trained.INPUT_SIZE)
    labels = np.repeat([label_of[p.name] for p in photos.paths], quantize.VIEWS_PER_PHOTO)
    model = keras.saving.load_model(model_path, compile=False)
    scores = model.predict(mobilenet_v2.preprocess_input(pixels.astype("float32")), verbose=0)
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def weights_of(model_path: Path) -> list[np.ndarray]:
    import keras

    return [np.asarray(w) for w in keras.saving.load_model(model_path, compile=False).weights]


def study(
    seeds: list[int],
    train: Callable[..., Any] | None = None,
    *,
    bf16: bool = True,
    repeat: bool = False,
    train_per_class: int | None = None,
    calibration_per_class: int | None = None,
) -> list[dict[str, Any]]:
    """One row of figures per training seed; `train` defaults to tests/support/trained.train."""
    from kerasserve.service.inference.precision import cpu_capabilities
    from tests.support import gate_photos, trained

    train = train or trained.train
    bf16 = bf16 and "BF16" in cpu_capabilities()
    rows = []
    for seed in seeds:
        work = Path(tempfile.mkdtemp(prefix=f"int8-gate-{seed}-"))
        # A fresh OpenVINO cache per seed: every export, INT8 model and gate is measured anew.
        os.environ["KERASSERVE_CACHE_DIR"] = str(work / "cache")
        photos = gate_photos.write(
            work,
            train_per_class or gate_photos.TRAIN_PER_CLASS,
            calibration_per_class or gate_photos.CALIBRATION_PER_CLASS,
        )
        started = time.perf_counter()
        result = train(photos.train, photos.holdout, work / "model", seed=seed)
        row: dict[str, Any] = {
            "seed": seed,
            "train_s": time.perf_counter() - started,
            "holdout": result.holdout_accuracy,
            "views": view_accuracy(result.model_path, photos.calibration, photos.holdout),
        }
        if repeat:
            again = train(photos.train, photos.holdout, work / "again", seed=seed)
            first, second = weights_of(result.model_path), weights_of(again.model_path)
            row["identical"] = all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
            row["max_weight_diff"] = max(
                float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True)
            )
        row["int8"] = gate_figures(
            result.model_path, result.labels_path, photos.calibration, "int8"
        )
        if bf16:
            row["bf16"] = gate_figures(
                result.model_path, result.labels_path, photos.calibration, "bf16"
            )
        rows.append(row)
        print(line(row), flush=True)
    return rows


def line(row: dict[str, Any]) -> str:
    int8 = row["int8"]
    text = (
        f"seed {row['seed']}: held-out {row['holdout']:.3f} (views {row['views']:.3f}); INT8 "
        f"top-1 {int8['top1']:.4f} ({int8['differ']}/{int8['images']} differ), top-5 "
        f"{int8['top5']:.4f}, default gate {'passes' if int8['passes'] else 'FAILS'}"
    )
    if "bf16" in row:
        text += f"; BF16 top-1 {row['bf16']['top1']:.4f}"
    text += f"; trained in {row['train_s']:.0f} s"
    if "identical" in row:
        text += (
            f"; retrained: {'identical' if row['identical'] else 'DIFFERENT'} weights "
            f"(max diff {row['max_weight_diff']:.3g})"
        )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--no-bf16", action="store_true", help="skip the BF16 gate")
    parser.add_argument("--repeat", action="store_true", help="train twice: deterministic?")
    parser.add_argument("--train-per-class", type=int, help="default: the test's (48)")
    parser.add_argument("--calibration-per-class", type=int, help="default: the test's (6)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    rows = study(
        [int(s) for s in args.seeds.split(",")],
        bf16=not args.no_bf16,
        repeat=args.repeat,
        train_per_class=args.train_per_class,
        calibration_per_class=args.calibration_per_class,
    )
    top1 = [r["int8"]["top1"] for r in rows]
    print(
        f"INT8 top-1 agreement min {min(top1):.4f}, median {statistics.median(top1):.4f}; "
        f"default gate passes {sum(r['int8']['passes'] for r in rows)} of {len(rows)}; "
        f">= 0.995: {sum(t >= 0.995 for t in top1)} of {len(rows)}; training "
        f"{min(r['train_s'] for r in rows):.0f}-{max(r['train_s'] for r in rows):.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
