"""Schemathesis against the live `/openapi.json`: every operation, a bounded number of cases.

It runs against the `tight` server, the hardened configuration (API keys, small limits), and
is told both keys through its config, so `ignored_auth` checks that a request without or
with a wrong key is refused. Every check runs except two whose premise this API rejects:

- `positive_data_acceptance`: schema-valid is not image-valid. Any bytes match
  `format: binary`, and 400 `invalid_image` / 415 `unsupported_media_type` are the
  documented answers to bytes that do not decode.
- `negative_data_rejection`: the server ignores form fields it does not know (old clients
  send extras), which this check counts as accepting invalid data.

Schemathesis brings its own sample JPEG/PNG/GIF files for `format: binary`, so uploads reach
the model too and their 200 bodies are checked against `PredictResponse`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.hardening.conftest import API_KEYS

EXAMPLES = 25
EXCLUDED = ("positive_data_acceptance", "negative_data_rejection")


def test_live_openapi_fuzzing_finds_no_5xx_and_no_schema_violation(tight, tmp_path):
    executable = shutil.which("schemathesis") or shutil.which(
        "schemathesis", path=os.path.dirname(sys.executable)
    )
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("schemathesis is missing in CI: pip install 'schemathesis>=4.0'")
        pytest.skip("schemathesis not installed (pip install 'schemathesis>=4.0')")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[cache]\nenabled = false\n\n"
        f'[auth.openapi.APIKeyHeader]\napi_key = "{API_KEYS[0]}"\n\n'
        f'[auth.openapi.HTTPBearer]\nbearer = "{API_KEYS[1]}"\n'
    )
    cmd = [
        executable,
        "--config-file", str(config),
        "--no-color",
        "run", f"{tight.base_url}/openapi.json",
        "--checks", "all",
        "--exclude-checks", ",".join(EXCLUDED),
        "--max-examples", str(EXAMPLES),
        "--seed", "20261126",
        "--generation-database", "none",
        "--workers", "1",
        "--request-timeout", "60",
        "--report", "junit",
        "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=540, check=False
    )
    output = result.stdout + result.stderr
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    print(f"\nschemathesis:\n{summary}")
    assert result.returncode == 0, output[-12000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected, summary
    assert tested, summary
    assert int(tested.group(1)) == int(selected.group(2)) > 0, summary  # every operation
