"""Pydantic models of every request option, response and error of the kerasserve HTTP API.

This package is shared by the server and the Python SDK, so it imports only Pydantic.
"""

if __name__ != "kerasserve.schemas":  # e.g. `import schemas` from the repository's root folder
    raise ImportError(
        f"this is kerasserve.schemas, imported here as {__name__!r}: import kerasserve.schemas "
        "(or run `python -m kerasserve.service`) after `pip install -e .`"
    )


from kerasserve.schemas.classifiers import (
    ClassExamples,
    ClassifierResponse,
    ClassifierRetired,
    HeadEvaluation,
    TeachTiming,
)
from kerasserve.schemas.errors import ErrorCode, ErrorDetail, ErrorResponse
from kerasserve.schemas.features import FeatureLayer, FeatureResult, FeaturesResponse, LayerList
from kerasserve.schemas.health import Health, Readiness
from kerasserve.schemas.models import (
    BatchingInfo,
    ModelInfo,
    ModelList,
    ModelState,
    OutputKind,
    Preprocessing,
    RepositoryIndex,
    RepositoryModel,
    RuntimeInfo,
    WeightsInfo,
    WeightsKind,
)
from kerasserve.schemas.predictions import (
    ImageResult,
    LegacyPrediction,
    LegacyPredictResponse,
    ModelRef,
    Prediction,
    PredictResponse,
    Timing,
)

__all__ = [
    "ClassExamples",
    "ClassifierResponse",
    "ClassifierRetired",
    "HeadEvaluation",
    "TeachTiming",
    "BatchingInfo",
    "ErrorCode",
    "ErrorDetail",
    "ErrorResponse",
    "FeatureLayer",
    "FeatureResult",
    "FeaturesResponse",
    "Health",
    "ImageResult",
    "LayerList",
    "LegacyPredictResponse",
    "LegacyPrediction",
    "ModelInfo",
    "ModelList",
    "ModelRef",
    "ModelState",
    "OutputKind",
    "RepositoryIndex",
    "RepositoryModel",
    "Prediction",
    "PredictResponse",
    "Preprocessing",
    "Readiness",
    "RuntimeInfo",
    "Timing",
    "WeightsInfo",
    "WeightsKind",
]
