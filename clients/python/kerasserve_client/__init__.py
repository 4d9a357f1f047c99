"""The Python SDK of kerasserve: `Client` and `AsyncClient` return the `schemas` models.

    from kerasserve_client import Client

    with Client("http://127.0.0.1:8000") as client:
        answer = client.predict("cat.jpg", model="MobileNetV2", top_k=3)
        for p in answer.results[0].predictions:
            print(p.label, p.probability)

Needs only httpx and pydantic: no TensorFlow, Keras, FastAPI or Pillow.
"""

from kerasserve_client._async import AsyncClient
from kerasserve_client._numpy import features_to_numpy
from kerasserve_client._sync import Client
from kerasserve_client._uploads import ImageInput
from kerasserve_client._version import __version__
from kerasserve_client.errors import (
    APIError,
    ClientTimeout,
    ConnectError,
    DeadlineExceeded,
    InvalidImage,
    InvalidRequest,
    KerasServeError,
    LayerNotFound,
    ModelNotFound,
    NotFound,
    NotReady,
    Overloaded,
    ReadyTimeout,
    RequestTimeout,
    ServerError,
    ShuttingDown,
    TooLarge,
    TransportError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from kerasserve_client.retry import Retry

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "ClientTimeout",
    "ConnectError",
    "DeadlineExceeded",
    "ImageInput",
    "InvalidImage",
    "InvalidRequest",
    "KerasServeError",
    "LayerNotFound",
    "ModelNotFound",
    "NotFound",
    "NotReady",
    "Overloaded",
    "ReadyTimeout",
    "RequestTimeout",
    "Retry",
    "ServerError",
    "ShuttingDown",
    "TooLarge",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "__version__",
    "features_to_numpy",
]
