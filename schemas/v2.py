"""The Open Inference Protocol (KServe v2 REST): metadata, inference requests, responses, errors.

Field names and shapes are the protocol's, so any v2 client (Triton's `tritonclient`,
KServe's `InferenceRESTClient`) reads them; extra fields a client sends (KServe adds
`model_name` to a request) are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The protocol's `$parameter`: a string, a number or a boolean.
Parameters = dict[str, str | bool | int | float]

EXTENSIONS = ("binary_tensor_data", "classification")


class ServerMetadata(BaseModel):
    """`GET /v2`."""

    name: str
    version: str
    extensions: list[str] = Field(default_factory=lambda: list(EXTENSIONS))


class ServerLive(BaseModel):
    """`GET /v2/health/live`; the status code (200) is the answer, the body repeats it."""

    live: bool


class ServerReady(BaseModel):
    """`GET /v2/health/ready`: 200 when every model is ready, 400 otherwise."""

    ready: bool


class ModelReady(BaseModel):
    """`GET /v2/models/{model}[/versions/{version}]/ready`."""

    name: str
    ready: bool


class TensorMetadata(BaseModel):
    """An input or output of a model; -1 in `shape` is any size (the batch)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """`GET /v2/models/{model}[/versions/{version}]`."""

    name: str
    versions: list[str] = Field(description="The versions that answer, oldest first.")
    platform: str = Field(description="`keras_tensorflow`, `keras_openvino`, ...")
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    """One input tensor: `data` inline (JSON) or `parameters.binary_data_size` bytes after it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    # Nested or flat, row-major; elements are checked against the datatype by the server,
    # not here, so a 150,000-pixel tensor is not validated element by element twice.
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    """An output the client asks for: `binary_data`, `classification` (top k) parameters."""

    model_config = ConfigDict(extra="ignore")

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """`POST /v2/models/{model}[/versions/{version}]/infer` (the JSON part of the body)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """One output tensor: `data` inline, or `parameters.binary_data_size` bytes after the JSON."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    """The answer to an inference request (the JSON part of the body)."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ErrorV2(BaseModel):
    """Every failed `/v2` request: the protocol's error object."""

    error: str
