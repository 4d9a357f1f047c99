"""The plain FastAPI baseline: what a competent user writes, one compiled model call per request.

One sync route, `def predict(image: UploadFile)`, which FastAPI runs in Starlette's thread
pool: Pillow opens the upload, converts to RGB and resizes to the model's input, Keras' own
`preprocess_input`, then the model on a batch of one, and the top-5 of Keras'
`decode_predictions`. No batching, no decode pool. The model is compiled once, as Keras advises:
`tf.function(lambda x: model(x, training=False))` (measured here as fast as `predict_on_batch` at
batch 1: 14.0 vs 14.4 ms median for MobileNetV2; eager `model(x)` 96.8 ms). `--mode eager` keeps
the eager call per request as an extra row, never a headline baseline. `weights=None`, as every
benchmark target; the class index is read from kerasserve's shipped copy instead of downloaded.

Run: `python -m bench.fastapi_plain --port 8200 [--model ResNet50] [--mode compiled|eager]`;
then `POST /predict` with the field `image`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from fastapi import FastAPI, HTTPException, UploadFile  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

CLASS_INDEX = (
    Path(__file__).resolve().parents[1] / "service/inference/data/imagenet_class_index.json"
)


MODULES = {"MobileNetV2": "mobilenet_v2", "ResNet50": "resnet"}


def create_app(model_name: str = "MobileNetV2", mode: str = "compiled") -> FastAPI:
    import importlib

    import keras
    import tensorflow as tf
    from keras.src.applications import imagenet_utils

    module = importlib.import_module(f"keras.applications.{MODULES[model_name]}")
    decode_predictions, preprocess_input = module.decode_predictions, module.preprocess_input
    model = getattr(keras.applications, model_name)(weights=None)
    size = tuple(model.input_shape[1:3])
    if mode == "compiled":
        run = tf.function(lambda x: model(x, training=False))
    else:
        run = lambda x: model(x, training=False)  # noqa: E731 (the eager call, per request)
    run(np.zeros((1, *size, 3), np.float32))  # trace (compiled) or build before serving
    imagenet_utils.CLASS_INDEX = json.loads(CLASS_INDEX.read_text())
    app = FastAPI(title=f"kerasserve bench: plain FastAPI ({mode})", docs_url=None, redoc_url=None)

    @app.post("/predict")
    def predict(image: UploadFile) -> dict[str, Any]:
        try:
            img = Image.open(io.BytesIO(image.file.read())).convert("RGB").resize(size)
        except (UnidentifiedImageError, OSError) as exc:
            raise HTTPException(400, f"not an image: {exc}") from exc
        x = preprocess_input(np.asarray(img, dtype=np.float32)[None])
        probs = np.asarray(run(x))
        top = decode_predictions(probs, top=5)[0]
        return {
            "predictions": [
                {"class_id": cid, "label": label, "probability": float(p)} for cid, label, p in top
            ]
        }

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--model", choices=sorted(MODULES), default="MobileNetV2")
    parser.add_argument("--mode", choices=["compiled", "eager"], default="compiled")
    args = parser.parse_args(argv)
    app = create_app(args.model, args.mode)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
