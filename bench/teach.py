"""Classes by example: seconds for POST /v1/classifiers/{name} with 20 photos of 4 classes.

A fresh `kerasserve serve` (MobileNetV2, random weights, the default runtime) with an admin key;
the SDK's `teach` posts 5 photos per class (480x640, colours and textures drawn with Pillow),
twice under two names: the first pays for the base's feature graph, the second does not.

Run: `python -m bench.teach`
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kerasserve_client import Client
from tests.support.live_server import live_server
from tests.support.photos_dataset import write_dataset

ADMIN_KEY = "bench-teach-admin-key"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="teach-"))
    write_dataset(folder, per_class=5, seed=11, size=(480, 640))
    examples = {p.name: sorted(p.iterdir()) for p in sorted(folder.iterdir())}
    args = ("--model", "MobileNetV2", "--weights", "none", "--admin-key", ADMIN_KEY)
    with (
        live_server(*args) as server,
        Client(server.base_url, api_key=ADMIN_KEY, timeout=120) as client,
    ):
        for name in ("first", "second"):
            started = time.perf_counter()
            answer = client.teach(name, examples, base="MobileNetV2")
            took = time.perf_counter() - started
            print(
                f"{name}: {sum(map(len, examples.values()))} photos, {took:.1f} s; head "
                f"{answer.head}, leave-one-out accuracy {answer.accuracy:.2f}; {answer.timing}"
            )


if __name__ == "__main__":
    main()
