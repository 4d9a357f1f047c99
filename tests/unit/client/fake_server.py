"""A stand-in kerasserve for `httpx.MockTransport`: canned answers, every request recorded."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import unquote

import httpx

JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg body" * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"fake png body"

BAD_IMAGE = b"<not an image>"
LABELS = {"en": "class", "zh-CN": "类别"}

WEIGHTS = {"kind": "random", "path": None, "random": True, "warning": "random weights"}
RUNTIME = {"name": "keras", "detail": None, "max_abs_diff": None}


def model_info(name: str, *, default: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "aliases": [name.lower()],
        "family": name,
        "input_shape": [224, 224, 3],
        "preprocessing": {"mode": "tf", "module": "mobilenet_v2", "input_size": [224, 224]},
        "weights": WEIGHTS,
        "num_classes": 1000,
        "runtime": RUNTIME,
        "batching": {
            "max_batch_size": 16,
            "max_wait_ms": 5,
            "max_queue": 256,
            "timeout_s": 30,
            "buckets": [1, 2, 4, 8, 16],
        },
        "state": "ready",
        "default": default,
        "version": 2,
        "versions": [1, 2],
        "output_kind": "softmax",
        "labels_languages": ["en", "zh-CN"],
    }


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def parts(request: httpx.Request) -> list[Part]:
    """The multipart form parts of a request, parsed the way a server would."""
    body = request.read()
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    found = []
    for part in message.iter_parts():
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes)
        found.append(
            Part(
                part.get_param("name", header="content-disposition"),  # type: ignore[arg-type]
                part.get_filename(),
                part.get_content_type(),
                content,
            )
        )
    return found


def error(status: int, code: str, message: str = "boom", **fields: Any) -> httpx.Response:
    headers = {"x-request-id": "req-from-header"}
    if "retry_after" in fields and fields["retry_after"] is not None:
        headers["retry-after"] = str(int(fields["retry_after"]))
    body = {"code": code, "message": message, "request_id": "req-1", "details": [], **fields}
    return httpx.Response(status, json=body, headers=headers)


class FakeServer:
    """Answers like kerasserve serving `models`; `script()` queues answers for one route first.

    A predict answer has one result per uploaded part, named after it, with its byte count as the
    top class index, so tests can tell which image a result came from. Like the server, a request
    with a part holding `BAD_IMAGE` fails whole (400 invalid_image). Labels follow `?lang=`
    (`en` or `zh-CN`); `output_kind` is what the model claims to be.
    """

    def __init__(
        self,
        models: tuple[str, ...] = ("MobileNetV2",),
        default: str | None = None,
        output_kind: str | None = "softmax",
    ):
        self.models = models
        self.output_kind = output_kind
        self.default = default if default is not None else models[0] if models else None
        self.requests: list[httpx.Request] = []
        self.ready = True
        self._scripts: dict[tuple[str, str], deque[httpx.Response | Exception]] = defaultdict(deque)

    def script(self, method: str, path: str, *answers: httpx.Response | Exception) -> None:
        self._scripts[(method, path)].extend(answers)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self._scripts.get((request.method, request.url.path))
        if queued:
            answer = queued.popleft()
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok", "version": "0.1.0"})
        if path == "/readyz":
            body = {"ready": self.ready, "models": dict.fromkeys(self.models, "ready")}
            return httpx.Response(200 if self.ready else 503, json=body)
        if path == "/v1/models":
            infos = [model_info(m, default=m == self.default) for m in self.models]
            return httpx.Response(200, json={"models": infos, "default_model": self.default})
        raw = request.url.raw_path.decode().split("?")[0]
        segments = [unquote(s) for s in raw.split("/")]  # "", "v1", "models", name, [verb]
        if len(segments) >= 4 and segments[3] not in self.models:
            return error(404, "model_not_found", f"Unknown model {segments[3]!r}")
        if len(segments) == 4:
            return httpx.Response(200, json=model_info(segments[3]))
        if request.method == "GET" and segments[4] == "layers":
            layers = [{"name": "out_relu", "output_shape": [None, 7, 7, 1280]}]
            body = {"model": segments[3], "layers": layers, "default_layer": "out_relu"}
            return httpx.Response(200, json=body)
        if request.method == "POST" and segments[4] == "predict":
            return self._predict(request, segments[3])
        if request.method == "POST" and segments[4] == "features":
            return self._features(request, segments[3])
        return error(404, "not_found", f"no route {path}")

    def _predict(self, request: httpx.Request, model: str) -> httpx.Response:
        uploads = parts(request)
        for i, part in enumerate(uploads):
            if BAD_IMAGE in part.content:
                return error(400, "invalid_image", f"image {i} ({part.filename}) does not decode")
        k = int(request.url.params.get("top_k", 5))
        lang = request.url.params.get("lang", "en")
        if lang not in LABELS:
            return error(422, "invalid_request", f"no labels in {lang!r}; have en, zh-CN")
        results = [
            {
                "filename": part.filename,
                "predictions": [
                    {
                        "index": len(part.content) + rank,
                        "class_id": f"n{len(part.content) + rank:08d}",
                        "label": f"{LABELS[lang]} {len(part.content) + rank}",
                        "probability": 0.5 / (rank + 1),
                    }
                    for rank in range(k)
                ],
                "timing": {"queue_ms": 0.5, "inference_ms": 10.0, "batch_size": len(uploads)},
            }
            for part in uploads
        ]
        model_ref = {
            "name": model,
            "version": 2,
            "weights": WEIGHTS,
            "runtime": RUNTIME,
            "output_kind": self.output_kind,
            "labels_language": lang,
        }
        body = {"model": model_ref, "results": results, "request_id": f"req-{len(self.requests)}"}
        return httpx.Response(200, content=json.dumps(body).encode(), headers=_json)

    def _features(self, request: httpx.Request, model: str) -> httpx.Response:
        (part,) = parts(request)
        body = {
            "model": model,
            "layer": request.url.params.get("layer", "global_average_pooling2d"),
            # Like the server: avg for the default (spatial) layer when none is asked.
            "pooling": request.url.params.get("pooling", "avg"),
            "shape": [4],
            "results": [
                {
                    "filename": part.filename,
                    "vector": [0.0, 1.0, 2.0, float(len(part.content))],
                    "timing": {"queue_ms": 0.1, "inference_ms": 3.0, "batch_size": 1},
                }
            ],
        }
        return httpx.Response(200, json=body)


_json = {"content-type": "application/json"}
