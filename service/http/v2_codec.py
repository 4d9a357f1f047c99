"""The Open Inference Protocol's codec: request bodies to images and asked outputs, results to
bodies, for JSON tensors and the binary tensor data extension. Pure: no FastAPI, no model."""

from __future__ import annotations

import base64
import binascii
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from kerasserve.schemas import Prediction
from kerasserve.schemas.v2 import (
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    ResponseOutput,
)
from kerasserve.service.errors import (
    ImageTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    TooManyImages,
)

if TYPE_CHECKING:
    from kerasserve.service.inference.loaded import Classified

HEADER_LENGTH = "Inference-Header-Content-Length"
IMAGE_INPUT = "image"
PIXELS_INPUT = "pixels"
OUTPUT = "probabilities"
_INPUTS_HINT = (
    f"send one input: {IMAGE_INPUT!r} (BYTES [n]: encoded images, base64 in JSON or raw with "
    f"the binary data extension) or {PIXELS_INPUT!r} (UINT8 [n, height, width, 3])"
)

# -- the codec: bodies in ------------------------------------------------------------------------


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo a request's `Content-Encoding` (gzip or deflate, as `tritonclient` sends them),
    stopping at `max_bytes` so a small compressed body cannot inflate without bound."""
    if not encoding or encoding.strip().lower() == "identity":
        return body
    kind = encoding.strip().lower()
    if kind not in ("gzip", "deflate"):
        raise InvalidRequest(
            f"Content-Encoding {encoding[:40]!r} is not supported; send gzip, deflate or none"
        )
    # wbits: 16+ reads a gzip wrapper, 15 a zlib one (HTTP's "deflate").
    inflater = zlib.decompressobj(31 if kind == "gzip" else 15)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"the {kind} body does not decompress: {exc}") from None
    if len(out) > max_bytes:
        raise PayloadTooLarge(
            f"the body decompresses past the limit of {max_bytes:,} bytes",
            extra={"max_bytes": max_bytes},
        )
    if not inflater.eof:
        raise InvalidRequest(f"the {kind} body is truncated")
    return out


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail, split where `Inference-Header-Content-Length` says."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidRequest(
            f"{HEADER_LENGTH} must be an integer, got {header_length[:40]!r}"
        ) from None
    if not 0 < length <= len(body):
        raise InvalidRequest(
            f"{HEADER_LENGTH} is {length}, but the body has {len(body)} bytes; it must be the "
            "size of the JSON part that starts the body"
        )
    return body[:length], body[length:]


def parse_request(header: bytes) -> InferenceRequest:
    """The inference request's JSON, validated, or `InvalidRequest` quoting what is wrong."""
    if not header.strip():
        raise InvalidRequest("the request has no body: send an inference request JSON object")
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        )
        raise InvalidRequest(f"invalid inference request: {problems}") from None


def _int_parameter(parameters: Parameters | None, key: str, where: str) -> int | None:
    if not parameters or key not in parameters:
        return None
    value = parameters[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{where}: parameter {key!r} must be an integer >= 0, got {value!r}")
    return value


def _bool_parameter(parameters: Parameters | None, key: str, where: str) -> bool | None:
    if not parameters or key not in parameters:
        return None
    value = parameters[key]
    if not isinstance(value, bool):
        raise InvalidRequest(f"{where}: parameter {key!r} must be true or false, got {value!r}")
    return value


def binary_inputs(request: InferenceRequest, tail: bytes) -> list[bytes | None]:
    """Each input's raw bytes (binary data extension) in input order, None for JSON `data`."""
    raws: list[bytes | None] = []
    offset = 0
    for tensor in request.inputs:
        where = f"input {tensor.name!r}"
        size = _int_parameter(tensor.parameters, "binary_data_size", where)
        if size is None:
            if tensor.data is None:
                raise InvalidRequest(
                    f"{where} has neither `data` nor a `binary_data_size` parameter"
                )
            raws.append(None)
            continue
        if tensor.data is not None:
            raise InvalidRequest(f"{where} has both `data` and `binary_data_size`; send one")
        if offset + size > len(tail):
            hint = "" if tail else f" (is the {HEADER_LENGTH} header missing?)"
            raise InvalidRequest(
                f"{where}: binary_data_size {size} runs past the body's {len(tail)} binary "
                f"bytes after the JSON{hint}"
            )
        raws.append(tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise InvalidRequest(
            f"{len(tail) - offset} bytes after the JSON belong to no input: the inputs' "
            f"binary_data_size add up to {offset}, the binary part has {len(tail)}"
        )
    return raws


def read_bytes_elements(blob: bytes, where: str) -> list[bytes]:
    """A BYTES tensor in the binary format: each element a 4-byte little-endian length, then it."""
    out: list[bytes] = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise InvalidRequest(
                f"{where}: BYTES element {len(out)} has a truncated length prefix "
                f"({len(blob) - offset} of 4 bytes)"
            )
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise InvalidRequest(
                f"{where}: BYTES element {len(out)} says {size} bytes, {len(blob) - offset} remain"
            )
        out.append(blob[offset : offset + size])
        offset += size
    return out


def write_bytes_elements(items: Sequence[bytes]) -> bytes:
    """The binary format of a BYTES tensor (the inverse of `read_bytes_elements`)."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _b64(element: object, index: int, where: str) -> bytes:
    if not isinstance(element, str):
        raise InvalidRequest(
            f"{where}: element {index} is {type(element).__name__}; in JSON, BYTES elements "
            "are base64 strings of the encoded images"
        )
    text = element
    if text.startswith("data:") and "," in text:  # a data: URL, as a browser's FileReader gives
        text = text.split(",", 1)[1]
    text = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        shown = element[:24] + ("..." if len(element) > 24 else "")
        raise InvalidRequest(
            f"{where}: element {index} ({shown!r}) is not base64: in JSON, send each encoded "
            "image base64-encoded, or the raw bytes with the binary data extension"
        ) from None


def _batch(shape: list[int], where: str, max_images: int) -> int:
    if any(d < 0 for d in shape):
        raise InvalidRequest(f"{where}: shape {shape} has a negative dimension")
    n = shape[0] if shape else 0
    if n < 1:
        raise InvalidRequest(f"{where}: shape {shape} holds no image")
    if n > max_images:
        raise TooManyImages(
            f"{n} images in one request; the limit is {max_images}",
            extra={"max_images": max_images},
        )
    return n


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def encoded_images(tensor: RequestInput, raw: bytes | None, max_images: int) -> list[bytes]:
    """The `image` input: BYTES of shape [n] (or [n, 1]), one encoded image per element."""
    where = f"input {tensor.name!r}"
    if tensor.datatype != "BYTES":
        raise InvalidRequest(f"{where} must have datatype BYTES, got {tensor.datatype!r}")
    shape = tensor.shape
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise InvalidRequest(f"{where} must have shape [n] or [n, 1], got {shape}")
    n = _batch(shape, where, max_images)
    if raw is not None:
        images = read_bytes_elements(raw, where)
    else:
        assert tensor.data is not None
        images = [_b64(e, i, where) for i, e in enumerate(_flatten(tensor.data))]
    if len(images) != n:
        raise InvalidRequest(
            f"{where}: shape {shape} says {n} elements, the data holds {len(images)}"
        )
    return images


def pixel_images(
    tensor: RequestInput, raw: bytes | None, max_images: int, max_pixels: int
) -> list[np.ndarray]:
    """The `pixels` input: UINT8 of shape [n, height, width, 3], any size (it is resized)."""
    where = f"input {tensor.name!r}"
    if tensor.datatype != "UINT8":
        raise InvalidRequest(f"{where} must have datatype UINT8, got {tensor.datatype!r}")
    shape = tensor.shape
    if len(shape) != 4 or shape[3] != 3:
        raise InvalidRequest(f"{where} must have shape [n, height, width, 3], got {shape}")
    _batch(shape, where, max_images)
    if shape[1] < 1 or shape[2] < 1:
        raise InvalidRequest(f"{where}: shape {shape} has an empty side")
    if shape[1] * shape[2] > max_pixels:
        raise ImageTooLarge(
            f"{where}: {shape[1]}x{shape[2]} is {shape[1] * shape[2]:,} pixels; the limit is "
            f"{max_pixels:,}",
            extra={"max_pixels": max_pixels},
        )
    count = math.prod(shape)
    if raw is not None:
        if len(raw) != count:
            raise InvalidRequest(
                f"{where}: shape {shape} needs {count:,} bytes, the binary data has {len(raw):,}"
            )
        return list(np.frombuffer(raw, np.uint8).reshape(shape))
    assert tensor.data is not None
    flat = _flatten(tensor.data)
    if len(flat) != count:
        raise InvalidRequest(
            f"{where}: shape {shape} says {count:,} elements, the data holds {len(flat):,}"
        )
    if not all(type(v) is int for v in flat):
        bad = next(v for v in flat if type(v) is not int)
        raise InvalidRequest(f"{where}: UINT8 elements are integers 0-255, got {bad!r}")
    values = np.asarray(flat, dtype=np.int64)
    if values.min() < 0 or values.max() > 255:
        raise InvalidRequest(
            f"{where}: UINT8 elements are 0-255, got {int(values.min())}..{int(values.max())}"
        )
    return list(values.astype(np.uint8).reshape(shape))


def request_images(
    request: InferenceRequest, tail: bytes, *, max_images: int, max_pixels: int
) -> list[bytes] | list[np.ndarray]:
    """The request's one input as the images `classify` takes: encoded bytes or pixel arrays."""
    raws = binary_inputs(request, tail)
    if len(request.inputs) != 1:
        names = [t.name for t in request.inputs]
        raise InvalidRequest(f"the request has {len(names)} inputs {names}; {_INPUTS_HINT}")
    tensor, raw = request.inputs[0], raws[0]
    if tensor.name == IMAGE_INPUT:
        return encoded_images(tensor, raw, max_images)
    if tensor.name == PIXELS_INPUT:
        return pixel_images(tensor, raw, max_images, max_pixels)
    raise InvalidRequest(f"unknown input {tensor.name!r}; {_INPUTS_HINT}")


@dataclass(frozen=True)
class OutputPlan:
    """One output to answer: the class probabilities, or (`classification` k > 0) the top k
    as "score:index:label" strings; inline JSON or binary."""

    name: str
    binary: bool
    classification: int


def plan_outputs(request: InferenceRequest, num_classes: int) -> list[OutputPlan]:
    """The outputs asked for, with each one's format (Triton's rules: an output's own
    `binary_data` wins over the request's `binary_data_output`)."""
    binary = bool(_bool_parameter(request.parameters, "binary_data_output", "the request"))
    # A request-level `classification` is shorthand for the output's own parameter.
    k_default = _int_parameter(request.parameters, "classification", "the request") or 0
    if not request.outputs:
        return [OutputPlan(OUTPUT, binary, min(k_default, num_classes))]
    plans: list[OutputPlan] = []
    for output in request.outputs:
        where = f"output {output.name!r}"
        if output.name != OUTPUT:
            raise InvalidRequest(f"unknown output {output.name!r}; this model has {OUTPUT!r}")
        if any(p.name == output.name for p in plans):
            raise InvalidRequest(f"{where} is asked for twice")
        own_binary = _bool_parameter(output.parameters, "binary_data", where)
        k = _int_parameter(output.parameters, "classification", where)
        plans.append(
            OutputPlan(
                output.name,
                binary if own_binary is None else own_binary,
                min(k_default if k is None else k, num_classes),
            )
        )
    return plans


# -- the codec: bodies out -----------------------------------------------------------------------


def classification_entry(score: float, index: int, label: str) -> str:
    """Triton's classification string: the output value, the class index, the label."""
    return f"{score:f}:{index}:{label}"


def classification_strings(output: np.ndarray, predictions: Sequence[Prediction]) -> list[str]:
    """One image's top classes (as `classify` ranked them) scored by the output's values."""
    return [classification_entry(float(output[p.index]), p.index, p.label) for p in predictions]


@dataclass(frozen=True)
class OutputTensor:
    """An output's values: FP32 numbers or BYTES strings, and whether they travel binary."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray | list[str]
    binary: bool


def encode_response(
    response: InferenceResponse, tensors: Sequence[OutputTensor]
) -> tuple[bytes, dict[str, str]]:
    """The body and headers: JSON alone, or JSON then each binary output's bytes in order,
    with `Inference-Header-Content-Length` saying where the JSON ends."""
    outputs: list[ResponseOutput] = []
    blobs: list[bytes] = []
    for tensor in tensors:
        if isinstance(tensor.values, np.ndarray):
            array = tensor.values.astype("<f4", copy=False)
            raw = array.tobytes()
            data: list[Any] = array.ravel().tolist()
        else:
            raw = write_bytes_elements([s.encode() for s in tensor.values])
            data = list(tensor.values)
        if tensor.binary:
            blobs.append(raw)
            outputs.append(
                ResponseOutput(
                    name=tensor.name,
                    shape=tensor.shape,
                    datatype=tensor.datatype,
                    parameters={"binary_data_size": len(raw)},
                )
            )
        else:
            outputs.append(
                ResponseOutput(
                    name=tensor.name, shape=tensor.shape, datatype=tensor.datatype, data=data
                )
            )
    header = response.model_copy(update={"outputs": outputs}).model_dump_json(exclude_none=True)
    if not blobs:
        return header.encode(), {"Content-Type": "application/json"}
    head = header.encode()
    return head + b"".join(blobs), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(head)),
    }


def output_tensors(
    plans: Sequence[OutputPlan], results: Sequence[Classified]
) -> list[OutputTensor]:
    """Each planned output for a batch of results, in the order the client asked."""
    n = len(results)
    tensors = []
    for plan in plans:
        if plan.classification:
            k = plan.classification
            strings = [
                s for r in results for s in classification_strings(r.output, r.predictions[:k])
            ]
            tensors.append(OutputTensor(plan.name, "BYTES", [n, k], strings, plan.binary))
        else:
            stacked = np.stack([r.output for r in results]).astype(np.float32, copy=False)
            tensors.append(
                OutputTensor(plan.name, "FP32", list(stacked.shape), stacked, plan.binary)
            )
    return tensors
