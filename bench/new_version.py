"""A new version under load: MobileNetV2 version 2 dropped into a polled repository while 16
clients predict; seconds until the first answer from version 2, and every error.

    python -m bench.new_version --clients 16

Two `.keras` files with different random weights (the same architecture) are written once to
`--work`; version 2 appears by one `rename`, as a deployment would do it. Nothing inherited from
the environment pins the runtime (`KERASSERVE_*` are dropped): the default path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _versions(work: Path) -> None:
    import keras

    for version in (1, 2):
        path = work / f"staging{version}" / "model.keras"
        if path.is_file():
            continue
        keras.utils.set_random_seed(version)
        path.parent.mkdir(parents=True, exist_ok=True)
        keras.applications.MobileNetV2(weights=None).save(path)


def _photo() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


async def run(work: Path, clients: int, wait_s: float) -> dict[str, Any]:
    _versions(work)
    repo = work / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "mnv2").mkdir(parents=True)
    shutil.copytree(work / "staging1", repo / "mnv2" / "1")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASSERVE_")}
    log = (work / "server.log").open("w")
    argv = ["kerasserve", "serve", "--port", str(port), "--model-repository", str(repo)]
    proc = subprocess.Popen(
        [*argv, "--poll-repository-s", "1"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    seen: list[tuple[float, int | None, Any]] = []
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited; see {work / 'server.log'}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        photo = _photo()
        stop = asyncio.Event()

        async def client() -> None:
            async with httpx.AsyncClient(timeout=60) as http:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        r = await http.post(
                            f"{base}/v1/models/mnv2/predict", files={"image": photo}
                        )
                        seen.append((sent, r.status_code, r.json().get("model", {}).get("version")))
                    except (httpx.HTTPError, ValueError) as exc:
                        seen.append((sent, None, repr(exc)))

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(5)
        staging = repo / "mnv2" / ".incoming"
        shutil.copytree(work / "staging2", staging)
        appeared = time.monotonic()
        staging.rename(repo / "mnv2" / "2")
        first = None
        while time.monotonic() - appeared < wait_s and first is None:
            answered = [sent for sent, _, version in seen if version == 2]
            first = min(answered) - appeared if answered else None
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    errors = [entry for entry in seen if entry[1] != 200]
    return {
        "first_v2_answer_s": None if first is None else round(first, 1),
        "requests": len(seen),
        "errors": len(errors),
        "error_sample": [str(e) for e in errors[:3]],
        "load1": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.new_version", description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--wait-s", type=float, default=120)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "new-version")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(args.work, args.clients, args.wait_s))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
