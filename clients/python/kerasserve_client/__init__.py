"""The Python SDK of kerasserve: `Client` and `AsyncClient` return the `schemas` models.

    from kerasserve_client import Client

    with Client("http://127.0.0.1:8000") as client:
        answer = client.predict("cat.jpg", model="MobileNetV2", top_k=3)
        for p in answer.results[0].predictions:
            print(p.label, p.probability)
        for outcome in client.predict_iter(paths, concurrency=4):  # as each one completes
            print(outcome.index, outcome.result or outcome.error)

Needs only httpx and pydantic: no TensorFlow, Keras, FastAPI or Pillow (numpy arrays and PIL
images are accepted when you have those).
"""

from kerasserve_client._async import AsyncClient
from kerasserve_client._bulk import ImageOutcome, Progress
from kerasserve_client._encode import encode_image
from kerasserve_client._features import FeatureOutcome
from kerasserve_client._numpy import features_to_numpy
from kerasserve_client._sync import Client
from kerasserve_client._uploads import ImageInput
from kerasserve_client._version import __version__
from kerasserve_client.errors import (
    APIError,
    ClientTimeout,
    ConnectError,
    DeadlineExceeded,
    Forbidden,
    InputError,
    InvalidImage,
    InvalidRequest,
    KerasServeError,
    LayerNotFound,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    NotReady,
    Overloaded,
    RateLimited,
    ReadyTimeout,
    RequestTimeout,
    ServerError,
    ShuttingDown,
    TooLarge,
    TooManyModels,
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
    "FeatureOutcome",
    "Forbidden",
    "ImageInput",
    "ImageOutcome",
    "InputError",
    "InvalidImage",
    "InvalidRequest",
    "KerasServeError",
    "LayerNotFound",
    "ModelNotFound",
    "ModelUnavailable",
    "NotFound",
    "NotReady",
    "Overloaded",
    "Progress",
    "RateLimited",
    "ReadyTimeout",
    "RequestTimeout",
    "Retry",
    "ServerError",
    "ShuttingDown",
    "TooLarge",
    "TooManyModels",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "__version__",
    "encode_image",
    "features_to_numpy",
]
