"""The front-end ceiling: receive, decode and answer like kerasserve's predict, with no model at all.

A plain FastAPI app of its own, one uvicorn worker like kerasserve, and nothing else of
kerasserve but the two things a model-free server must share with it to be a ceiling:
the decode (`kerasserve.service.inference.imaging.decode_image`, the same scaled JPEG decode, on a pool
of as many threads as kerasserve's default `--decode-workers`) and the response's JSON shape
(`schemas.PredictResponse`, serialized per request as kerasserve does). The predictions are
a constant top-5. No batching, no queue, no model: what kerasserve's best runtime reaches
as a share of this is how much of the front end's own limit it keeps.

Run: `python -m bench.ceiling --port 8100`; then `POST /v1/models/MobileNetV2/predict`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from kerasserve.schemas import PredictResponse
from kerasserve.service.errors import ServiceError
from kerasserve.service.inference.imaging import decode_image

MODEL = "MobileNetV2"
INPUT_SIZE = (224, 224)
MAX_PIXELS = 50_000_000
# Five real ImageNet classes: the answer weighs what kerasserve's does.
TOP5 = [
    (207, "n02099601", "golden_retriever", 0.41),
    (208, "n02099712", "Labrador_retriever", 0.22),
    (222, "n02104029", "kuvasz", 0.09),
    (257, "n02111500", "Great_Pyrenees", 0.05),
    (852, "n04409515", "tennis_ball", 0.03),
]
MODEL_REF: dict[str, Any] = {
    "name": MODEL,
    "weights": {"kind": "random", "path": None, "random": True, "warning": None},
    "runtime": {"name": "none", "detail": "front-end ceiling: no model", "max_abs_diff": None},
    # Fields the v1 answer gained with model versions and label languages; a schema that
    # does not know them yet ignores them.
    "version": 1,
    "output_kind": "softmax",
    "labels_language": "en",
}
PREDICTIONS = [
    {"index": i, "class_id": c, "label": label, "probability": p} for i, c, label, p in TOP5
]


def create_app(decode_workers: int | None = None) -> FastAPI:
    app = FastAPI(title="kerasserve bench: front-end ceiling", docs_url=None, redoc_url=None)
    pool = ThreadPoolExecutor(decode_workers or os.cpu_count() or 2, thread_name_prefix="decode")

    @app.exception_handler(ServiceError)
    async def bad_image(_request: Request, exc: ServiceError) -> JSONResponse:
        # The decoder's own errors, with kerasserve's codes: a bad upload is a clear 4xx.
        body: dict[str, Any] = {"code": exc.code.value, "message": exc.message}
        if exc.extra:
            body["extra"] = exc.extra
        return JSONResponse(body, status_code=exc.status)

    @app.post(f"/v1/models/{MODEL}/predict")
    async def predict(image: UploadFile) -> Response:
        data = await image.read()
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, decode_image, data, INPUT_SIZE, MAX_PIXELS)
        decode_ms = (time.perf_counter() - started) * 1e3
        body = PredictResponse.model_validate(
            {
                "model": MODEL_REF,
                "results": [
                    {
                        "filename": image.filename,
                        "predictions": PREDICTIONS,
                        "timing": {
                            "queue_ms": 0.0,
                            "inference_ms": 0.0,
                            "batch_size": 1,
                            "decode_ms": round(decode_ms, 3),
                        },
                    }
                ],
                "request_id": None,
            }
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--decode-workers", type=int, default=None, help="default: cores")
    args = parser.parse_args(argv)
    app = create_app(args.decode_workers)
    # The same uvicorn settings as `kerasserve serve`: one worker, no access log.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
