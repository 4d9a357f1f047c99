"""Where `kerasserve features --jsonl/--npy` writes vectors, and which files are already done."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from kerasserve_client import _jsonl
from kerasserve_client._features import FeatureOutcome


class JsonlSink:
    """One line per image, appended and flushed at once: `{"file", "path", "ok", "vector", ...}`."""

    def __init__(self, path: Path, *, redo_errors: bool) -> None:
        self.path = path
        self.done = _jsonl.done_files(path, redo_errors=redo_errors)
        self._open: Any = None
        self._writer: _jsonl.JsonlWriter | None = None

    def __enter__(self) -> JsonlSink:
        self._open = _jsonl.JsonlWriter.append_to(self.path)
        self._writer = self._open.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open.__exit__(exc_type, exc, tb)

    def add(self, file: str, outcome: FeatureOutcome) -> None:
        assert self._writer is not None
        line: dict[str, Any] = {"file": file, "path": _jsonl.key(file), "ok": outcome.ok}
        if outcome.response is not None:
            response = outcome.response
            line.update(model=response.model, layer=response.layer, shape=response.shape)
            line["vector"] = outcome.vector
        elif outcome.error is not None:
            line["error"] = _jsonl.error_fields(outcome.error)
        self._writer.write(line)


class NpySink:
    """Rows of one float32 array in `OUT`, row i's file on line i of `OUT.files` (JSON lines).

    Both files are rewritten whole (atomically, by rename) when the run ends or stops, so a killed
    run loses at most the rows of that run; failed images get no row (their errors go to stderr).
    """

    def __init__(self, path: Path) -> None:
        try:
            import numpy as np
        except ImportError as exc:
            raise ImportError(
                "--npy needs numpy, which kerasserve_client does not install: pip install numpy "
                "(or write --jsonl)"
            ) from exc
        self._np = np
        self.path = path
        self.index = Path(f"{path}.files")
        self._rows: list[Any] = []
        self._files: list[dict[str, str]] = []
        if path.exists() and self.index.exists():
            self._old = np.load(path)
            lines = self.index.read_text(encoding="utf-8").splitlines()
            self._files = [json.loads(line) for line in lines if line.strip()]
            if len(self._files) != len(self._old):
                raise ValueError(
                    f"{path} holds {len(self._old)} rows but {self.index} names "
                    f"{len(self._files)} files; remove both to start again"
                )
        else:
            self._old = None
        self.done = {entry["path"] for entry in self._files}

    def __enter__(self) -> NpySink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._save()

    def add(self, file: str, outcome: FeatureOutcome) -> None:
        if not outcome.ok:
            return
        self._rows.append(self._np.asarray(outcome.vector, dtype=self._np.float32))
        self._files.append({"file": file, "path": _jsonl.key(file)})

    def _save(self) -> None:
        np = self._np
        if not self._rows:
            return
        new = np.stack(self._rows)
        rows = new if self._old is None else np.concatenate([self._old, new])
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as stream:
            np.save(stream, rows)
        os.replace(tmp, self.path)
        tmp_index = self.index.with_name(self.index.name + ".tmp")
        text = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in self._files)
        tmp_index.write_text(text, encoding="utf-8")
        os.replace(tmp_index, self.index)
