"""The catalogue matches Keras: every model's name, input size and preprocessing, found by introspection."""

from __future__ import annotations

import numpy as np
import pytest

from kerasserve.service.errors import ModelNotFound
from kerasserve.service.inference import catalogue
from kerasserve.service.inference.runtime import make_preprocess

# An independent source: the table in ../shared/KERAS-NOTES.md, measured on this machine.
EXPECTED = {
    **{f"ConvNeXt{s}": (224, "none") for s in ("Tiny", "Small", "Base", "Large", "XLarge")},
    **{f"DenseNet{n}": (224, "torch") for n in (121, 169, 201)},
    **{
        f"EfficientNetB{i}": (size, "none")
        for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    },
    **{
        f"EfficientNetV2{v}": (size, "none")
        for v, size in zip(
            ("B0", "B1", "B2", "B3", "S", "M", "L"),
            (224, 240, 260, 300, 384, 480, 480),
            strict=True,
        )
    },
    "InceptionV3": (299, "tf"),
    "InceptionResNetV2": (299, "tf"),
    "Xception": (299, "tf"),
    "MobileNet": (224, "tf"),
    "MobileNetV2": (224, "tf"),
    "MobileNetV3Small": (224, "none"),
    "MobileNetV3Large": (224, "none"),
    "NASNetMobile": (224, "tf"),
    "NASNetLarge": (331, "tf"),
    **{f"ResNet{n}": (224, "caffe") for n in (50, 101, 152)},
    **{f"ResNet{n}V2": (224, "tf") for n in (50, 101, 152)},
    "VGG16": (224, "caffe"),
    "VGG19": (224, "caffe"),
}


@pytest.fixture(scope="module")
def specs():
    return catalogue.catalogue()


def test_catalogue_holds_every_classifier_keras_ships(specs):
    assert set(specs) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_input_size_and_preprocess_mode(specs, name):
    size, mode = EXPECTED[name]
    assert specs[name].input_size == (size, size)
    assert specs[name].preprocess_mode == mode


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_served_preprocessing_equals_keras_preprocess_input(specs, name):
    spec = specs[name]
    h, w = spec.input_size
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    ours = np.asarray(make_preprocess(spec.preprocess_input, (h, w))(pixels))
    theirs = spec.preprocess_input(pixels.astype(np.float32))  # Keras' own, on numpy
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50V2", "DenseNet121", "MobileNetV3Small"])
def test_probed_input_size_equals_the_built_model(specs, name):
    model = specs[name].constructor(weights=None)
    built = model.input_shape[1:3]
    expected = specs[name].input_size
    assert tuple(d or expected[i] for i, d in enumerate(built)) == expected


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("resnet50", "ResNet50"),
        ("mobilenet_v2", "MobileNetV2"),
        ("EfficientNetV2-B0", "EfficientNetV2B0"),
        ("NASNETLARGE", "NASNetLarge"),
        ("convnext tiny", "ConvNeXtTiny"),
    ],
)
def test_names_resolve_ignoring_case_and_punctuation(spelling, canonical):
    assert catalogue.spec(spelling).name == canonical


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelNotFound, match="Did you mean: .*ResNet50") as info:
        catalogue.spec("resnet5")
    assert "ResNet50" in info.value.extra["suggestions"]
