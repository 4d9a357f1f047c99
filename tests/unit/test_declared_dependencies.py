"""Every third-party module the code, tests and benchmark import is declared in pyproject.toml.

A package installed by hand once made CI green while a fresh machine failed (`cryptography`,
needed by the nginx TLS tests, was declared nowhere). This reads the imports themselves.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench", "service", "batching", "schemas", "clients/python")
FIRST_PARTY = {"kerasserve", "kerasserve_client", "kerasserve_web", "tests", "bench"}
# Imported only where present; the tests that use them skip without them, and say why.
OPTIONAL = {
    # the KServe SDK pins an older protobuf and pulls kubernetes: its test runs in its own venv
    "kserve",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {_normalise(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            for name in _imports(path):
                if name in sys.stdlib_module_names or name in FIRST_PARTY or name == "__future__":
                    continue
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    declared = _declared()
    providers = metadata.packages_distributions()
    missing = []
    for module, where in sorted(_third_party_imports().items()):
        if module in OPTIONAL:
            continue
        distributions = {_normalise(d) for d in providers.get(module, [])}
        if not distributions:
            missing.append(
                f"{module} (installed by no distribution here; imported by {sorted(where)[0]})"
            )
        elif not distributions & declared:
            missing.append(
                f"{module} from {sorted(distributions)} (imported by {sorted(where)[0]})"
            )

    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_the_scan_sees_the_imports_it_must():
    found = _third_party_imports()

    assert {"numpy", "httpx", "pytest", "cryptography", "fastapi"} <= set(found)
    assert "os" not in found
    assert "kerasserve" not in found
