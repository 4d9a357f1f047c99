"""Publishing a trained version into a model repository: all of it, or nothing.

Every file is written into a temporary folder inside the repository (same file system, named
with a leading dot so a polling server skips it), then one `os.rename` makes it
`REPO/NAME/<v>/`. A model seen for the first time is renamed in whole, `config.toml` included,
so a polling server never sees a model folder without a version.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from kerasserve.service.training.errors import InvalidOption, PublishFailed

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CONFIG = 'output_kind = "softmax"\npreprocess = "none"\n'
CONFIG_NOTE = (
    "# Written by `kerasserve train`: each version is a whole model (its preprocessing inside\n"
    "# the graph) with its own labels.txt.\n"
)


def check_name(name: str) -> str:
    """A model name is a repository folder and a URL path segment: say so when it cannot be."""
    if not NAME_PATTERN.fullmatch(name) or name.isdigit():
        raise InvalidOption(
            f"--name {name!r} is not a valid model name: use 1-64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit and not all digits (e.g. 'flowers-v1')"
        )
    return name


def next_version(model_folder: Path) -> int:
    if not model_folder.is_dir():
        return 1
    versions = [int(p.name) for p in model_folder.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def publish(repository: Path, name: str, write: Callable[[Path], None]) -> tuple[int, Path]:
    """Write a new version of `name` with `write(folder)`, then move it into place.

    Returns (version, its folder). Raises `PublishFailed` when anything fails to write; the
    temporary folder is removed and no version appears.
    """
    check_name(name)
    model_folder = repository / name
    try:
        repository.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".train-{name}-", dir=repository))
        fresh_model = not model_folder.exists()
        version = next_version(model_folder)
    except OSError as exc:
        raise PublishFailed(
            f"cannot write into the repository {str(repository)!r}: {exc}. Pass --repository "
            "a folder you can write to"
        ) from exc
    try:
        version_folder = staging / str(version) if fresh_model else staging
        version_folder.mkdir(exist_ok=True)
        write(version_folder)
        if fresh_model:
            (staging / "config.toml").write_text(CONFIG_NOTE + CONFIG, encoding="utf-8")
            os.rename(staging, model_folder)
        else:
            if not (model_folder / "config.toml").exists():
                _write_new(model_folder / "config.toml", CONFIG_NOTE + CONFIG)
            os.rename(staging, model_folder / str(version))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishFailed(
            f"cannot write version {version} of {name!r} into {str(repository)!r}: {exc}. "
            "Nothing was published (the partial folder was removed); free space on that disk "
            "or pass --repository on another one, then run again"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version, model_folder / str(version)


def _write_new(path: Path, text: str) -> None:
    """Create `path` whole (written aside, then linked in), never over an existing file."""
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_text(text, encoding="utf-8")
    try:
        os.link(aside, path)
    except FileExistsError:
        pass  # written meanwhile by another run: theirs stands
    finally:
        aside.unlink()
