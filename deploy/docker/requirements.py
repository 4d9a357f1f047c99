"""Print the requirements of kerasserve's chosen extras from pyproject.toml, for the image's build.

The image installs these before the project's own code so that a code change does not reinstall
TensorFlow. `--tensorflow cuda` swaps the CPU wheel for `tensorflow[and-cuda]` (the GPU image).

    python deploy/docker/requirements.py --extras server --tensorflow cpu > requirements.txt
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return match.group(1).lower().replace("_", "-")


def _tensorflow_cuda(requirements: list[str]) -> list[str]:
    """Replace the platform-dependent TensorFlow lines by one `tensorflow[and-cuda]` line."""
    tf = [r for r in requirements if _name(r) in {"tensorflow", "tensorflow-cpu"}]
    if not tf:
        raise ValueError(
            "no tensorflow requirement to swap: --tensorflow cuda needs the server extra"
        )
    # Keep the version range (the part between the name and the environment marker).
    specifier = re.sub(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?", "", tf[0].split(";")[0]).strip()
    out = [r for r in requirements if r not in tf]
    out.insert(0, f"tensorflow[and-cuda]{specifier}")
    return out


def requirements(pyproject: Path, extras: list[str], tensorflow: str = "cpu") -> list[str]:
    """Base dependencies plus each extra's, in pyproject order, without duplicates."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise ValueError(f"unknown extras {unknown}; pyproject.toml defines {sorted(optional)}")
    out: list[str] = []
    for requirement in [*project["dependencies"], *(r for e in extras for r in optional[e])]:
        if requirement not in out:
            out.append(requirement)
    if tensorflow == "cuda":
        return _tensorflow_cuda(out)
    if tensorflow != "cpu":
        raise ValueError(f"--tensorflow must be cpu or cuda, got {tensorflow!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--extras", default="server", help="comma-separated, e.g. server,openvino")
    parser.add_argument("--tensorflow", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    try:
        lines = requirements(args.pyproject, extras, args.tensorflow)
    except ValueError as exc:
        sys.stderr.write(f"requirements.py: {exc}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
