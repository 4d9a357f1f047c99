"""The INT8 accuracy gate on a TRAINED model, with its default thresholds (top-1 agreement >= 0.99).

Random weights cannot show a gate passing (nothing to agree on), so this trains the colour and
texture classifier of tests/support/trained.py (MobileNetV2, 128 px, BatchNorm statistics from
the photos, Keras fit), exports it to OpenVINO, quantises it with NNCF as the server does
(preset `performance`, calibrated on the model's own photos) and measures the top-1 agreement
with FP32 Keras on held-out photos, for each training seed.

Run: `python -m bench.int8_gate_trained --seeds 0,1,2`
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--holdout-per-class", type=int, default=100)
    args = parser.parse_args(argv)

    import keras
    import nncf  # type: ignore[import-untyped]
    import openvino as ov
    from keras.applications import mobilenet_v2

    from tests.support import trained

    def prepare(x: np.ndarray) -> np.ndarray:
        return np.asarray(mobilenet_v2.preprocess_input(x.astype("float32")))

    def stack(photos: dict[str, list[Path]]) -> np.ndarray:
        return np.concatenate([trained.pixels(photos[c]) for c in trained.CLASSES])

    core = ov.Core()
    for seed in (int(s) for s in args.seeds.split(",")):
        work = Path(tempfile.mkdtemp(prefix="int8-gate-"))
        train = trained.write_photos(work / "train", 24, seed=1)
        hold = stack(trained.write_photos(work / "hold", args.holdout_per_class, seed=2))
        calib = stack(trained.write_photos(work / "cal", 40, seed=3))
        started = time.perf_counter()
        result = trained.train(train, trained.write_photos(work / "h2", 8, seed=4), work, seed=seed)
        model = keras.models.load_model(result.model_path)
        xml = str(work / "model.xml")
        model.export(xml, format="openvino")
        reference = model.predict(prepare(hold), batch_size=32, verbose=0)
        dataset = nncf.Dataset(list(calib), lambda s: prepare(s[None]))
        quantised = nncf.quantize(
            core.read_model(xml),
            dataset,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(calib),
        )
        compiled = core.compile_model(quantised, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        int8 = np.concatenate(
            [compiled(prepare(hold[i : i + 16]))[0] for i in range(0, len(hold), 16)]
        )
        same = float(np.mean(reference.argmax(1) == int8.argmax(1)))
        print(
            f"seed {seed}: held-out accuracy {result.holdout_accuracy:.3f}; INT8 top-1 agreement "
            f"{same:.4f} over {len(hold)} held-out photos (gate 0.99: "
            f"{'passes' if same >= 0.99 else 'fails'}); {time.perf_counter() - started:.0f} s"
        )


if __name__ == "__main__":
    main()
