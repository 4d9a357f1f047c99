"""Real Keras models with weights that give meaningful (non-uniform) outputs, for fidelity tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def he_rescale(model, seed: int = 1) -> None:
    """Re-draw every kernel He-normal so activations neither vanish nor saturate.

    With keras.applications' default init, MobileNetV2's outputs are uniform (1e-11 spread),
    which would make any equality test pass trivially.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights or not hasattr(layer, "kernel"):
            continue
        kernel = weights[0]
        if "depthwise" in layer.name:
            fan_in = int(np.prod(kernel.shape[:2]))
        else:
            fan_in = int(np.prod(kernel.shape[:-1])) if kernel.ndim > 1 else kernel.shape[0]
        weights[0] = rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape).astype("float32")
        layer.set_weights(weights)


def save_model(name: str, directory: Path, rescale: bool, seed: int = 0) -> Path:
    """Build a catalogue model with seeded random weights (rescaled if asked), save it as
    `.keras`. The same weights every run, so a server's OpenVINO export of it is cached."""
    import keras

    from kerasserve.service.inference import catalogue

    spec = catalogue.spec(name)
    keras.utils.set_random_seed(seed)
    model = spec.constructor(weights=None)
    if rescale:
        he_rescale(model)
    path = directory / f"{spec.name}.keras"
    model.save(path)
    return path


def photos(count: int, size: tuple[int, int] = (480, 640), seed: int = 0) -> list[bytes]:
    """Distinct JPEGs with structure (gradients, shapes, noise), not just noise."""
    import io

    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(count):
        base = np.stack(
            [
                (xx * (i + 1) * 3 / w * 255) % 256,
                (yy * (i + 2) * 2 / h * 255) % 256,
                ((xx + yy) * (i % 5 + 1) / (h + w) * 255) % 256,
            ],
            axis=-1,
        )
        base = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        img = Image.fromarray(base, "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.ellipse(
                [x0, y0, x0 + int(rng.integers(30, 200)), y0 + int(rng.integers(30, 200))],
                fill=color,
            )
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out
