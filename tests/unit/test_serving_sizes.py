"""OpenVINO runs a batch at its own size up to 8 images, past that at the next multiple of 8."""

from __future__ import annotations

import pytest

from kerasserve.service.inference.openvino_runtime import (
    EXACT_UP_TO,
    serving_size,
    serving_sizes,
)


@pytest.mark.parametrize("largest", [1, 4, 8, 12, 32, 64])
def test_every_batch_runs_at_a_size_that_holds_it_and_was_warmed(largest: int) -> None:
    sizes = serving_sizes(largest)
    for n in range(1, largest + 1):
        size = serving_size(n, largest)
        assert n <= size <= largest
        assert size in sizes
        if n <= EXACT_UP_TO:
            assert size == n  # no padding
        else:
            assert size - n < EXACT_UP_TO


def test_the_shapes_stay_few() -> None:
    assert serving_sizes(32) == [1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32]
    assert serving_sizes(12) == [1, 2, 3, 4, 5, 6, 7, 8, 12]
