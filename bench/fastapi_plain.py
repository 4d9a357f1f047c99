"""The plain FastAPI baseline: the first server a user would write, one `model(x)` per request.

One sync route, `def predict(image: UploadFile)`, which FastAPI runs in Starlette's thread
pool: Pillow opens the upload, converts to RGB and resizes to 224, Keras' own
`preprocess_input`, then `model(x, training=False)` on a batch of one, and the top-5 of
Keras' `decode_predictions`. No batching, no decode pool, no compiled graph: what dynamic
batching is measured against. `weights=None`, as every benchmark target; the class index is
read from kerasserve's shipped copy instead of downloaded.

Run: `python -m bench.fastapi_plain --port 8200`; then `POST /predict` with the field `image`.
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


def create_app() -> FastAPI:
    import keras
    from keras.applications.mobilenet_v2 import decode_predictions, preprocess_input
    from keras.src.applications import imagenet_utils

    model = keras.applications.MobileNetV2(weights=None)
    imagenet_utils.CLASS_INDEX = json.loads(CLASS_INDEX.read_text())
    app = FastAPI(title="kerasserve bench: plain FastAPI", docs_url=None, redoc_url=None)

    @app.post("/predict")
    def predict(image: UploadFile) -> dict[str, Any]:
        try:
            img = Image.open(io.BytesIO(image.file.read())).convert("RGB").resize((224, 224))
        except (UnidentifiedImageError, OSError) as exc:
            raise HTTPException(400, f"not an image: {exc}") from exc
        x = preprocess_input(np.asarray(img, dtype=np.float32)[None])
        probs = np.asarray(model(x, training=False))
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
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
