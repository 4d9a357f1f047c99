"""The classic Flask app: the server behind the classic Flask `/predict` contract, ported as is.

What the classic app did, kept as it was: one Flask app, `POST /predict` with the file field
`image`, Pillow open + RGB + resize to 224 (no JPEG draft), `img_to_array`, `preprocess_input`,
then `model.predict(x)` on a batch of one per request, `decode_predictions` top-5, and Flask's
own threaded development server (`app.run(threaded=True)`), one process. The only change:
`weights=None` (the benchmark's model) and the class index read from kerasserve's shipped copy
instead of downloaded, which costs the same.

Run: `python -m bench.seed_flask --port 5000`
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
from flask import Flask, jsonify, request  # noqa: E402
from PIL import Image  # noqa: E402

CLASS_INDEX = (
    Path(__file__).resolve().parents[1] / "service/inference/data/imagenet_class_index.json"
)

app = Flask(__name__)
model: Any = None


def load_model() -> None:
    global model
    from keras.applications import MobileNetV2
    from keras.src.applications import imagenet_utils

    model = MobileNetV2(weights=None)
    imagenet_utils.CLASS_INDEX = json.loads(CLASS_INDEX.read_text())


def prepare_image(image: Image.Image, target: tuple[int, int]) -> np.ndarray:
    from keras.applications.mobilenet_v2 import preprocess_input
    from keras.utils import img_to_array

    if image.mode != "RGB":
        image = image.convert("RGB")
    image = image.resize(target)
    array = img_to_array(image)
    array = np.expand_dims(array, axis=0)
    return np.asarray(preprocess_input(array))


@app.route("/predict", methods=["POST"])
def predict() -> Any:
    from keras.applications.mobilenet_v2 import decode_predictions

    data: dict[str, Any] = {"success": False}
    if request.files.get("image"):
        image = Image.open(io.BytesIO(request.files["image"].read()))
        x = prepare_image(image, target=(224, 224))
        preds = model.predict(x, verbose=0)
        results = decode_predictions(preds)
        data["predictions"] = [
            {"label": label, "probability": float(prob)} for (_, label, prob) in results[0]
        ]
        data["success"] = True
    return jsonify(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    load_model()
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
