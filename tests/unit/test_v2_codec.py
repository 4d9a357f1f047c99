"""The Open Inference Protocol codec: bodies built and read by the real `tritonclient` package."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from kerasserve.schemas import Prediction, Timing
from kerasserve.schemas.v2 import InferenceRequest, InferenceResponse
from kerasserve.service.errors import ImageTooLarge, InvalidRequest, PayloadTooLarge, TooManyImages
from kerasserve.service.http import v2_codec
from kerasserve.service.inference.loaded import Classified

JPEG = b"\xff\xd8\xff\xe0fake jpeg\x00\x00 with zeros\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def triton_body(inputs, outputs=None, parameters=None):
    """The body and `Inference-Header-Content-Length` tritonclient would send."""
    body, json_size = InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, parameters=parameters
    )
    return body, None if json_size is None else str(json_size)


def images_of(body, header_length, max_images=16, max_pixels=10_000_000):
    header, tail = v2_codec.split_body(body, header_length)
    request = v2_codec.parse_request(header)
    return v2_codec.request_images(request, tail, max_images=max_images, max_pixels=max_pixels)


def bytes_input(items, binary):
    tensor = InferInput("image", [len(items)], "BYTES")
    tensor.set_data_from_numpy(np.array(items, dtype=np.object_), binary_data=binary)
    return tensor


def classified(output, k):
    order = np.argsort(-output, kind="stable")[:k]
    return Classified(
        output=output,
        timing=Timing(queue_ms=1.0, inference_ms=2.0, batch_size=1, decode_ms=0.5),
        predictions=[
            Prediction(
                index=int(i), class_id=f"n{i}", label=f"class {i}", probability=float(output[i])
            )
            for i in order
        ],
    )


def test_codec_imports_no_tensorflow():
    # In a fresh interpreter: another test of the session may have imported Keras already.
    code = "import sys, kerasserve.service.http.v2_codec; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# -- bodies in ------------------------------------------------------------------------------


def test_binary_bytes_input_from_tritonclient():
    body, length = triton_body([bytes_input([JPEG, PNG], binary=True)])
    assert length is not None
    assert images_of(body, length) == [JPEG, PNG]


def test_json_bytes_input_is_base64():
    encoded = [base64.b64encode(JPEG).decode(), base64.b64encode(PNG).decode()]
    body, length = triton_body([bytes_input(encoded, binary=False)])
    assert length is None
    assert images_of(body, length) == [JPEG, PNG]


@pytest.mark.parametrize(
    "element",
    [
        base64.urlsafe_b64encode(JPEG).decode().rstrip("="),
        "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
    ],
)
def test_json_bytes_accepts_urlsafe_unpadded_and_data_urls(element):
    body = json.dumps(
        {"inputs": [{"name": "image", "shape": [1, 1], "datatype": "BYTES", "data": [[element]]}]}
    ).encode()
    assert images_of(body, None) == [JPEG]


def test_json_bytes_that_is_not_base64_says_what_to_send():
    body = json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["ÿØÿ not b64"]}]}
    ).encode()
    with pytest.raises(InvalidRequest, match=r"element 0 .* is not base64.*binary data extension"):
        images_of(body, None)


def test_json_bytes_element_must_be_a_string():
    body = json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [7]}]}
    ).encode()
    with pytest.raises(InvalidRequest, match="element 0 is int"):
        images_of(body, None)


@pytest.mark.parametrize("binary", [True, False])
def test_uint8_pixels_from_tritonclient(binary):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    tensor = InferInput("pixels", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    images = images_of(*triton_body([tensor]))
    assert len(images) == 2
    for got, want in zip(images, pixels, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


def test_uint8_nested_json_data():
    pixels = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(1, 2, 2, 3)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 2, 2, 3],
                    "datatype": "UINT8",
                    "data": pixels.tolist(),
                }
            ]
        }
    ).encode()
    (image,) = images_of(body, None)
    np.testing.assert_array_equal(image, pixels[0])


def pixels_body(shape, data):
    return json.dumps(
        {"inputs": [{"name": "pixels", "shape": shape, "datatype": "UINT8", "data": data}]}
    ).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([0, 1, 256], r"are 0-255, got 0\.\.256"),
        ([0, -1, 2], r"are 0-255, got -1\.\.2"),
        ([0, 1, 3.5], r"integers 0-255, got 3\.5"),
        ([0, 1, True], "integers 0-255, got True"),
        ([0, 1, "2"], "integers 0-255, got '2'"),
    ],
)
def test_uint8_json_values_are_checked(data, message):
    with pytest.raises(InvalidRequest, match=message):
        images_of(pixels_body([1, 1, 1, 3], data), None)


def test_uint8_json_count_must_match_the_shape():
    with pytest.raises(InvalidRequest, match="says 12 elements, the data holds 3"):
        images_of(pixels_body([1, 2, 2, 3], [0, 1, 2]), None)
    with pytest.raises(InvalidRequest, match=r"shape \[n, height, width, 3\]"):
        images_of(pixels_body([1, 1, 1, 4], [0, 1, 2, 3]), None)


def test_uint8_binary_size_must_match_the_shape():
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 2, 2, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 11},
                }
            ]
        }
    ).encode()
    with pytest.raises(InvalidRequest, match="needs 12 bytes, the binary data has 11"):
        images_of(header + bytes(11), str(len(header)))


def test_pixels_over_the_pixel_limit_are_refused_before_reading_them():
    body = json.dumps(
        {"inputs": [{"name": "pixels", "shape": [1, 100, 100, 3], "datatype": "UINT8", "data": []}]}
    ).encode()
    with pytest.raises(ImageTooLarge, match="10,000 pixels; the limit is 9,999"):
        images_of(body, None, max_pixels=9_999)


def test_too_many_images():
    body, length = triton_body([bytes_input([JPEG] * 3, binary=True)])
    with pytest.raises(TooManyImages, match="3 images in one request; the limit is 2"):
        images_of(body, length, max_images=2)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"name": "image", "shape": [1], "datatype": "UINT8", "data": [1]}, "datatype BYTES"),
        ({"name": "image", "shape": [1, 2], "datatype": "BYTES", "data": ["", ""]}, r"\[n, 1\]"),
        ({"name": "image", "shape": [0], "datatype": "BYTES", "data": []}, "holds no image"),
        ({"name": "pixels", "shape": [1, 2, 2, 3], "datatype": "FP32", "data": [0]}, "UINT8"),
        ({"name": "pixels", "shape": [1, 0, 2, 3], "datatype": "UINT8", "data": []}, "empty side"),
        ({"name": "input_1", "shape": [1], "datatype": "BYTES", "data": ["x"]}, "unknown input"),
        ({"name": "image", "shape": [1], "datatype": "BYTES"}, "neither `data` nor"),
    ],
)
def test_bad_inputs_are_named(tensor, message):
    body = json.dumps({"inputs": [tensor]}).encode()
    with pytest.raises(InvalidRequest, match=message):
        images_of(body, None)


def test_one_input_only():
    body, length = triton_body([bytes_input([JPEG], binary=True), bytes_input([PNG], binary=True)])
    with pytest.raises(InvalidRequest, match=r"2 inputs \['image', 'image'\]; send one input"):
        images_of(body, length)


def test_binary_inputs_are_sliced_in_input_order():
    a, b = b"first", b"second!"
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "a",
                    "shape": [5],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 5},
                },
                {"name": "j", "shape": [1], "datatype": "UINT8", "data": [1]},
                {
                    "name": "b",
                    "shape": [7],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 7},
                },
            ]
        }
    ).encode()
    request = v2_codec.parse_request(header)
    assert v2_codec.binary_inputs(request, a + b) == [a, None, b]
    with pytest.raises(InvalidRequest, match="3 bytes after the JSON belong to no input"):
        v2_codec.binary_inputs(request, a + b + b"xyz")
    with pytest.raises(InvalidRequest, match="runs past the body's 11 binary bytes"):
        v2_codec.binary_inputs(request, a + b[:-1])
    with pytest.raises(InvalidRequest, match="Inference-Header-Content-Length header missing"):
        v2_codec.binary_inputs(request, b"")


@pytest.mark.parametrize("size", [True, -1, "5", 1.5])
def test_binary_data_size_must_be_a_count(size):
    request = InferenceRequest.model_validate(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    )
    with pytest.raises(InvalidRequest, match="'binary_data_size' must be an integer >= 0"):
        v2_codec.binary_inputs(request, b"12345")


def test_data_and_binary_together_are_refused():
    request = InferenceRequest.model_validate(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": ["eA=="],
                    "parameters": {"binary_data_size": 5},
                }
            ]
        }
    )
    with pytest.raises(InvalidRequest, match="both `data` and `binary_data_size`"):
        v2_codec.binary_inputs(request, b"12345")


def test_bytes_elements_match_tritonclients_format():
    items = [JPEG, b"", PNG, bytes(range(256))]
    ours = v2_codec.write_bytes_elements(items)
    assert ours == serialize_byte_tensor(np.array(items, dtype=np.object_)).item()
    assert list(deserialize_bytes_tensor(ours)) == items
    assert v2_codec.read_bytes_elements(ours, "input 'image'") == items


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x05\x00", r"element 0 has a truncated length prefix \(2 of 4 bytes\)"),
        (struct.pack("<I", 9) + b"abc", "element 0 says 9 bytes, 3 remain"),
        (struct.pack("<I", 1) + b"a" + struct.pack("<I", 2), "element 1 says 2 bytes, 0 remain"),
    ],
)
def test_truncated_bytes_elements(blob, message):
    with pytest.raises(InvalidRequest, match=message):
        v2_codec.read_bytes_elements(blob, "input 'image'")


@pytest.mark.parametrize(
    ("header_length", "message"),
    [("abc", "must be an integer, got 'abc'"), ("0", "is 0, but the body has"), ("99", "is 99")],
)
def test_split_body_checks_the_header_length(header_length, message):
    assert v2_codec.split_body(b'{"a": 1}xyz', "8") == (b'{"a": 1}', b"xyz")
    assert v2_codec.split_body(b'{"a": 1}', None) == (b'{"a": 1}', b"")
    with pytest.raises(InvalidRequest, match=message):
        v2_codec.split_body(b'{"a": 1}xyz', header_length)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"", "has no body"),
        (b"{not json", "invalid inference request: body: Invalid JSON"),
        (b'{"inputs": []}', "inputs: List should have at least 1 item"),
        (b'{"inputs": [{"name": "image"}]}', r"inputs\.0\.shape: Field required"),
    ],
)
def test_parse_request_quotes_the_problem(header, message):
    with pytest.raises(InvalidRequest, match=message):
        v2_codec.parse_request(header)


def test_parse_request_ignores_fields_it_does_not_know():
    # KServe's InferRequest.to_rest() adds `model_name`.
    request = v2_codec.parse_request(
        b'{"id": "7", "model_name": "m", "inputs": [{"name": "image", "shape": [1], '
        b'"datatype": "BYTES", "data": ["eA=="]}]}'
    )
    assert request.id == "7"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_requests_as_tritonclient_sends_them(encoding):
    body = b'{"inputs": []}' * 100
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    assert v2_codec.decompress(packed, encoding, 10_000) == body
    with pytest.raises(PayloadTooLarge, match="decompresses past the limit of 1,000 bytes"):
        v2_codec.decompress(packed, encoding, 1_000)
    with pytest.raises(InvalidRequest, match="truncated"):
        v2_codec.decompress(packed[: len(packed) // 2], encoding, 10_000)
    with pytest.raises(InvalidRequest, match="does not decompress"):
        v2_codec.decompress(b"plain" + packed, encoding, 10_000)


def test_unknown_content_encoding():
    assert v2_codec.decompress(b"x", None, 10) == b"x"
    assert v2_codec.decompress(b"x", "identity", 10) == b"x"
    with pytest.raises(InvalidRequest, match="'br' is not supported"):
        v2_codec.decompress(b"x", "br", 10)


# -- outputs planned ------------------------------------------------------------------------


def plans_for(outputs=None, parameters=None, num_classes=10):
    body, length = triton_body([bytes_input([JPEG], binary=True)], outputs, parameters)
    header, _ = v2_codec.split_body(body, length)
    return v2_codec.plan_outputs(v2_codec.parse_request(header), num_classes)


def test_tritonclient_without_outputs_asks_for_binary_probabilities():
    assert plans_for() == [v2_codec.OutputPlan("probabilities", binary=True, classification=0)]


def test_output_binary_data_wins_over_the_request_default():
    assert plans_for([InferRequestedOutput("probabilities", binary_data=False)]) == [
        v2_codec.OutputPlan("probabilities", binary=False, classification=0)
    ]
    raw = InferenceRequest.model_validate(
        {
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["eA=="]}],
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "probabilities"}],
        }
    )
    assert v2_codec.plan_outputs(raw, 10) == [v2_codec.OutputPlan("probabilities", True, 0)]


def test_classification_from_the_output_or_the_request_clamped_to_the_classes():
    assert plans_for([InferRequestedOutput("probabilities", class_count=3)]) == [
        v2_codec.OutputPlan("probabilities", binary=True, classification=3)
    ]
    assert plans_for(parameters={"classification": 4}) == [
        v2_codec.OutputPlan("probabilities", binary=True, classification=4)
    ]
    assert plans_for(parameters={"classification": 50}, num_classes=10)[0].classification == 10


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([{"name": "logits"}], "unknown output 'logits'; this model has 'probabilities'"),
        ([{"name": "probabilities"}] * 2, "asked for twice"),
        (
            [{"name": "probabilities", "parameters": {"classification": "3"}}],
            "'classification' must be an integer >= 0, got '3'",
        ),
        (
            [{"name": "probabilities", "parameters": {"binary_data": 1}}],
            "'binary_data' must be true or false, got 1",
        ),
    ],
)
def test_bad_outputs(outputs, message):
    request = InferenceRequest.model_validate(
        {
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["eA=="]}],
            "outputs": outputs,
        }
    )
    with pytest.raises(InvalidRequest, match=message):
        v2_codec.plan_outputs(request, 10)


# -- bodies out -----------------------------------------------------------------------------


def test_classification_entry_is_tritons_format():
    # Triton writes std::to_string(value) + ":" + index + ":" + label.
    assert v2_codec.classification_entry(0.8732, 504, "coffee mug") == "0.873200:504:coffee mug"
    assert v2_codec.classification_entry(1.0, 0, "猫") == "1.000000:0:猫"


def response_for(plans, results):
    base = InferenceResponse(model_name="MobileNetV2", model_version="1", id="r1", outputs=[])
    body, headers = v2_codec.encode_response(base, v2_codec.output_tensors(plans, results))
    length = headers.get(v2_codec.HEADER_LENGTH)
    return (
        body,
        headers,
        InferenceServerClient.parse_response_body(
            body, header_length=None if length is None else int(length)
        ),
    )


@pytest.mark.parametrize("binary", [True, False])
def test_probabilities_read_back_by_tritonclient(binary):
    rng = np.random.default_rng(1)
    outputs = [rng.random(10).astype(np.float32) for _ in range(3)]
    body, headers, result = response_for(
        [v2_codec.OutputPlan("probabilities", binary, 0)], [classified(o, 1) for o in outputs]
    )
    got = result.as_numpy("probabilities")
    assert got.dtype == np.float32
    assert got.shape == (3, 10)
    np.testing.assert_array_equal(got, np.stack(outputs))
    meta = result.get_response()
    assert (meta["model_name"], meta["model_version"], meta["id"]) == ("MobileNetV2", "1", "r1")
    if binary:
        assert headers["Content-Type"] == "application/octet-stream"
        assert int(headers[v2_codec.HEADER_LENGTH]) == len(body) - 3 * 10 * 4
    else:
        assert headers == {"Content-Type": "application/json"}
        assert json.loads(body)["outputs"][0]["data"][:2] == [float(x) for x in outputs[0][:2]]


@pytest.mark.parametrize("binary", [True, False])
def test_classification_read_back_by_tritonclient(binary):
    first = np.array([0.1, 0.5, 0.2, 0.2], np.float32)
    second = np.array([0.7, 0.1, 0.05, 0.15], np.float32)
    _, _, result = response_for(
        [v2_codec.OutputPlan("probabilities", binary, 3)],
        [classified(first, 3), classified(second, 3)],
    )
    got = result.as_numpy("probabilities")
    assert got.shape == (2, 3)
    # Ties (0.2, 0.2) keep class order, as `classify` ranks them.
    assert [s.decode() if isinstance(s, bytes) else s for s in got.ravel()] == [
        "0.500000:1:class 1",
        "0.200000:2:class 2",
        "0.200000:3:class 3",
        "0.700000:0:class 0",
        "0.150000:3:class 3",
        "0.100000:1:class 1",
    ]
