"""`features_to_numpy`: feature vectors as one array, for users who have numpy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasserve.schemas import FeaturesResponse

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def features_to_numpy(response: FeaturesResponse) -> npt.NDArray[np.float32]:
    """An array of shape `(images, *response.shape)`, float32, in upload order.

    >>> vectors = features_to_numpy(client.features("cat.jpg"))  # e.g. (1, 1280)
    """
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError(
            "features_to_numpy needs numpy, which kerasserve_client does not install: "
            "pip install numpy"
        ) from exc
    rows = []
    for i, result in enumerate(response.results):
        if result.vector is None:
            raise ValueError(f"result {i} ({result.filename or 'unnamed'}) carries no vector")
        rows.append(np.asarray(result.vector, dtype=np.float32).reshape(response.shape))
    if not rows:
        return np.empty((0, *response.shape), dtype=np.float32)
    return np.stack(rows)
