"""Start-up calibration measures every bucket and caps the batch where throughput peaks; a
tuned server learns the batch size from its traffic; TensorFlow's thread pools are sized
before the first model."""

import asyncio
import json
import os
import subprocess
import sys

import httpx

from tests.support.live_server import ROOT, live_server
from tests.support.models import photos


def test_calibrated_server_reports_its_measurements_and_serves():
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "8",
        env={"KERASSERVE_CALIBRATE_BATCH": "true", "KERASSERVE_TUNE_BATCH": "false"},
    ) as srv:  # fmt: skip
        info = httpx.get(f"{srv.base_url}/v1/models/MobileNetV2").json()["batching"]
        r = httpx.post(
            f"{srv.base_url}/v1/models/MobileNetV2/predict",
            files={"image": photos(1)[0]},
            timeout=60,
        )
    assert r.status_code == 200
    assert info["configured_max_batch_size"] == 8
    assert set(info["throughput_by_batch"]) == {"1", "2", "4", "8"}
    assert all(rate > 0 for rate in info["throughput_by_batch"].values())
    assert info["max_batch_size"] in (1, 2, 4, 8)
    best = max(info["throughput_by_batch"].values())
    assert info["throughput_by_batch"][str(info["max_batch_size"])] >= 0.9 * best


async def _load(base_url: str, clients: int, each: int) -> list[int]:
    images = photos(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one_client(i: int) -> list[int]:
            codes = []
            for j in range(each):
                r = await client.post(
                    "/v1/models/MobileNetV2/predict",
                    files={"image": images[(i + j) % len(images)]},
                )
                codes.append(r.status_code)
            return codes

        results = await asyncio.gather(*(one_client(i) for i in range(clients)))
    return [code for codes in results for code in codes]


def test_tuned_server_learns_its_batch_size_from_live_traffic():
    # 16 clients against buckets of at most 4: whatever limit the tuner holds, a batch leaves
    # work waiting behind it. (With a limit of 8, 16 closed-loop clients settle into one batch
    # running and exactly one full batch queued, so nothing is ever left behind.)
    # The tuner learns from the batches of a runtime that runs one at a time (Keras).
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "4", "--runtime", "keras",
        env={"KERASSERVE_CALIBRATE_BATCH": "true", "KERASSERVE_TUNE_BATCH": "true"},
    ) as srv:  # fmt: skip
        codes = asyncio.run(_load(srv.base_url, clients=16, each=6))
        info = httpx.get(f"{srv.base_url}/v1/models/MobileNetV2").json()["batching"]
    assert codes == [200] * 96
    tuning = info["tuning"]
    assert tuning is not None
    assert tuning["limit"] in (1, 2, 4)
    assert info["max_batch_size"] == tuning["limit"]
    assert set(tuning["by_bucket"]) == {"1", "2", "4"}
    # Every image rode in some batch, and 16 clients left work waiting behind some batches.
    assert sum(row["items"] for row in tuning["by_bucket"].values()) >= 96
    assert tuning["backlogged_batches"] >= 1
    limit_row = tuning["by_bucket"][str(tuning["limit"])]
    assert limit_row["source"] in ("live", "seed")
    assert all(row["img_s"] > 0 for row in tuning["by_bucket"].values() if row["source"] == "live")


THREADS_SCRIPT = """
import json, logging, sys
import numpy as np
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="LOG %(message)s")
from kerasserve.service.inference.runtime import KerasRuntime
first = KerasRuntime.configure_threads(1, 1)
import keras, tensorflow as tf
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])
runtime = KerasRuntime(model, lambda x: x / 255.0, (8, 8), [1, 2])
runtime.warm()
out = runtime.predict(np.zeros((2, 8, 8, 3), dtype=np.uint8))
late = KerasRuntime.configure_threads(2, 2)
print(json.dumps({
    "first": first, "late": late, "detail": runtime.detail, "rows": int(out.shape[0]),
    "tf": [tf.config.threading.get_intra_op_parallelism_threads(),
           tf.config.threading.get_inter_op_parallelism_threads()],
}))
"""


def test_thread_pools_are_sized_before_the_first_model_and_a_late_change_is_refused():
    # A fresh process: TensorFlow sizes its pools once per process, at its first op.
    proc = subprocess.run(
        [sys.executable, "-c", THREADS_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["first"] == [1, 1]
    assert result["tf"] == [1, 1]
    assert result["late"] == [1, 1]  # what is in force, not what was asked
    assert "threads intra-op 1 / inter-op 1" in result["detail"]
    assert result["rows"] == 2
    assert any(
        line.startswith("LOG TensorFlow is already running with intra-op 1 / inter-op 1")
        for line in lines
    )
