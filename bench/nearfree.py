"""A near-free model served by kerasserve: global average pooling + Dense, `--preprocess none`.

The model costs almost nothing to run (a mean over the pixels and a 3x1000 matrix product),
so what kerasserve serves with it is its own front end: upload, decode, batching, answer.
Set beside `bench/ceiling.py` (the same decode and answer with no model and no batching),
the ratio says how much our own plumbing costs per request.

Run: `python -m bench.nearfree --port 8101 [kerasserve serve flags]`; then
`POST /v1/models/nearfree/predict`. The model is built once (seeded) into a cache folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

NAME = "nearfree"
INPUT = (224, 224, 3)
CLASSES = 1000  # ImageNet's: the served labels and answer weigh what MobileNetV2's do
CACHE = Path(os.environ.get("KERASSERVE_BENCH_CACHE", Path.home() / ".cache" / "kerasserve-bench"))


def model_path(folder: Path = CACHE) -> Path:
    """The saved `.keras` file, built on first use."""
    path = folder / f"{NAME}.keras"
    if not path.exists():
        build(path)
    return path


def build(path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(INPUT),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ],
        name=NAME,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.keras")
    model.save(partial)
    partial.replace(path)


def serve_argv(path: Path, rest: list[str]) -> list[str]:
    """`kerasserve serve` flags that serve the near-free model (`rest` after them)."""
    return ["serve", "--model-file", str(path), "--preprocess", "none", *rest]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"default {CACHE}")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    path = model_path(args.cache)
    from kerasserve.service.cli import main as kerasserve

    return kerasserve(serve_argv(path, rest))


if __name__ == "__main__":
    raise SystemExit(main())
