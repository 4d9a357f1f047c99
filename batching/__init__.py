"""Dynamic batching for asyncio: gather concurrent requests into batches for one batch function.

Knows nothing of HTTP, Keras or TensorFlow: it is given an async batch function and runs it.
"""

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
