"""Container health check: exit 0 when the local server answers 200 on /readyz, 1 otherwise.

Standard library only, so the slim image needs no curl. The port is KERASSERVE_PORT (8000).

    python /opt/kerasserve/healthcheck.py            # readiness (the image's HEALTHCHECK)
    python /opt/kerasserve/healthcheck.py /healthz   # liveness
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(path: str = "/readyz", timeout: float = 4.0) -> tuple[bool, str]:
    port = os.environ.get("KERASSERVE_PORT", "8000")
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:  # 503 while loading or draining
        return False, f"{url}: {exc.code} {exc.read(200).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str]) -> int:
    ok, detail = check(argv[1] if len(argv) > 1 else "/readyz")
    (sys.stdout if ok else sys.stderr).write(detail + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
