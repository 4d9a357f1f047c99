"""The benchmark's photos: a first load that asks for fewer does not shrink every later run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import images

pytest.importorskip("sklearn", reason="the benchmark's photos need scikit-learn")


def test_a_limited_first_load_leaves_the_whole_set_to_the_next(tmp_path: Path) -> None:
    (first,) = images.load("small", limit=1, cache=tmp_path)
    every = images.load("small", cache=tmp_path)
    assert len(every) == len(images.sources()) >= 2
    assert every[0] == first
    assert len({p.name for p in every}) == len(every)
