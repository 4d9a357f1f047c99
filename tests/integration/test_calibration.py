"""Start-up calibration measures every bucket and caps the batch where throughput peaks."""

import httpx

from tests.support.live_server import live_server
from tests.support.models import photos


def test_calibrated_server_reports_its_measurements_and_serves():
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "8",
        env={"KERASSERVE_CALIBRATE_BATCH": "true"},
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
