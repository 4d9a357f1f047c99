"""What `features_iter` shares between the twins: one outcome per image, in completion order."""

from __future__ import annotations

from dataclasses import dataclass, field

from kerasserve.schemas import FeaturesResponse
from kerasserve_client._uploads import ImageInput
from kerasserve_client.errors import KerasServeError


@dataclass(frozen=True)
class FeatureOutcome:
    """One image's answer from `features_iter`: its `response`, or its own `error`.

    `index` is the image's position in the input; `vector` its flattened features.
    """

    index: int
    image: ImageInput = field(repr=False)
    response: FeaturesResponse | None = None
    error: KerasServeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def vector(self) -> list[float]:
        """The image's flattened features, or its error raised."""
        if self.error is not None:
            raise self.error
        assert self.response is not None  # one of the two is always set
        vector = self.response.results[0].vector
        if vector is None:
            raise ValueError(f"image {self.index}: the answer carries no vector")
        return vector
