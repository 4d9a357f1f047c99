"""Dynamic batching for asyncio: gather concurrent requests into batches for one batch function.

Knows nothing of HTTP, Keras or TensorFlow: it is given an async batch function and runs it.
"""

if __name__ != "kerasserve.batching":  # e.g. `import batching` from the repository's root folder
    raise ImportError(
        f"this is kerasserve.batching, imported here as {__name__!r}: import kerasserve.batching "
        "(or run `python -m kerasserve.service`) after `pip install -e .`"
    )


from kerasserve.batching.batcher import Batcher, BatchObserver, Completed
from kerasserve.batching.errors import (
    BatchFailed,
    BatchingError,
    DeadlineExceeded,
    QueueFull,
    ShuttingDown,
)
from kerasserve.batching.policy import BatchPolicy, Decision, decide
from kerasserve.batching.tuner import BatchSizeTuner, TunerSettings

__all__ = [
    "BatchFailed",
    "BatchObserver",
    "BatchPolicy",
    "BatchSizeTuner",
    "Batcher",
    "BatchingError",
    "Completed",
    "DeadlineExceeded",
    "Decision",
    "QueueFull",
    "ShuttingDown",
    "TunerSettings",
    "decide",
]
