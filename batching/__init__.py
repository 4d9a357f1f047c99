"""Dynamic batching for asyncio: gather concurrent requests into batches for one batch function.

Knows nothing of HTTP, Keras or TensorFlow: it is given an async batch function and runs it.
"""

from batching.batcher import Batcher, BatchObserver, Completed
from batching.errors import BatchFailed, BatchingError, DeadlineExceeded, QueueFull, ShuttingDown
from batching.policy import BatchPolicy, Decision, decide
from batching.tuner import BatchSizeTuner, TunerSettings

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
