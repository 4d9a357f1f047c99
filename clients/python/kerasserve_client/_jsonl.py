"""Bulk jobs on disk: which files a folder holds, one JSON line per image, and what is already done.

A line is `{"file": ..., "ok": true, "model": {...}, "predictions": [...], ...}` or
`{"file": ..., "ok": false, "error": {"status": ..., "code": ..., "message": ...}}`; every line
also carries `"path"`, the file's absolute real path. Files are matched by it, so `photos`,
`photos/`, `./photos` and a rerun from another folder resume each other's runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from kerasserve_client._bulk import ImageOutcome
from kerasserve_client.errors import APIError, KerasServeError, TransportError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
)


def expand(names: Iterable[str]) -> list[str]:
    """Files as named, folders as the images inside them (recursively, sorted, hidden skipped).

    Raises `OSError` for a name that is neither, before anything is sent.
    """
    files: list[str] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files += _walk(path)
        elif path.is_file():
            files.append(os.path.normpath(name))
        else:
            raise OSError(2, "no such file or directory", name)
    return files


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [
            os.path.normpath(os.path.join(folder, name))
            for name in sorted(names)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        ]
    return found


def key(file: str) -> str:
    """What a file is known by in a JSONL file: its absolute real path (links resolved)."""
    return os.path.realpath(file)


def done_files(path: Path, *, redo_errors: bool = False) -> set[str]:
    """Keys of the files `path` already has a line for (with `redo_errors`, a successful one).

    A torn last line (a run killed mid-write) and lines of other tools are ignored; a file's
    latest line wins.
    """
    if not path.exists():
        return set()
    latest: dict[str, bool] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            # "path" is absolute; a line without one (an older SDK's) only knows the name it was
            # given, relative to wherever that run started: the current folder is the best guess.
            if isinstance(record.get("path"), str):
                latest[record["path"]] = record.get("ok") is True
            elif isinstance(record.get("file"), str):
                latest[key(record["file"])] = record.get("ok") is True
    return {file for file, ok in latest.items() if ok or not redo_errors}


def record(file: str, outcome: ImageOutcome) -> dict[str, Any]:
    """The JSON line for one image."""
    line: dict[str, Any] = {"file": file, "path": key(file), "ok": outcome.ok}
    if outcome.result is not None and outcome.model is not None:
        model = outcome.model
        line["model"] = {
            "name": model.name,
            "version": model.version,
            "output_kind": model.output_kind,
            "labels_language": model.labels_language,
        }
        line["predictions"] = [p.model_dump(mode="json") for p in outcome.result.predictions]
        line["timing"] = outcome.result.timing.model_dump(mode="json", exclude_none=True)
    elif outcome.error is not None:
        line["error"] = error_fields(outcome.error)
    line["request_id"] = outcome.request_id
    return line


def error_fields(error: KerasServeError) -> dict[str, Any]:
    if isinstance(error, APIError):
        code = None if error.code is None else str(error.code)  # a StrEnum's str is its value
        return {"status": error.status_code, "code": code, "message": error.message}
    kind = "transport_error" if isinstance(error, TransportError) else "input_error"
    return {"status": None, "code": kind, "message": str(error)}


class JsonlWriter:
    """Appends one line per image and flushes it, so a killed run loses at most a torn line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    @classmethod
    @contextlib.contextmanager
    def append_to(cls, path: Path) -> Iterator[JsonlWriter]:
        """The writer for `path`, after mending a torn last line (one a killed run left)."""
        torn = path.exists() and path.stat().st_size > 0 and not _ends_with_newline(path)
        with path.open("a", encoding="utf-8") as stream:
            if torn:
                stream.write("\n")
            yield cls(stream)

    def write(self, line: dict[str, Any]) -> None:
        self._stream.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._stream.flush()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"
