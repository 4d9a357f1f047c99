"""`python -m bench.inprocess`: the in-process driver answers every request and splits the CPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_ceiling_driven_in_process_answers_200_and_reports_its_decode_threads() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", "ceiling", "4", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip().splitlines()[-1]
    assert line.startswith("ceiling 4 clients: "), line
    assert re.search(r"statuses \{200: \d+\}$", line), line  # every answer a 200
    assert "'decode': " in line, line
    assert "'loop': " in line, line
    decode_ms = float(line.split("decode ")[-1].split(" ms/image")[0])
    assert decode_ms > 0, line
