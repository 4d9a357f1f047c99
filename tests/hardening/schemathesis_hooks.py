"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): give the upload operations real images.

Random bytes are never an image, so without a hint every generated upload would stop at
`415`; with it, the fuzzer also reaches the model and checks the `200` bodies against their
schema. Everything else it generates (paths, `top_k`, headers, broken forms) stays as is.
"""

from __future__ import annotations

import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(buf, "JPEG")
    return buf.getvalue()


_IMAGES = st.sampled_from([_jpeg((200, 30, 40)), _jpeg((10, 200, 90))])


@schemathesis.hook
def flatmap_body(context, body):
    operation = context.operation
    if operation is None or operation.method.upper() != "POST":
        return st.just(body)
    if isinstance(body, dict) and "image" in body:
        real = _IMAGES.map(lambda image: {**body, "image": [image]})
        return st.one_of(st.just(body), real)
    return st.just(body)
