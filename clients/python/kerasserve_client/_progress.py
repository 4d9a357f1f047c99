"""A progress display for bulk runs: a redrawn bar on a terminal, a line every tenth otherwise."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from kerasserve_client._bulk import Progress

REDRAW_EVERY_S = 0.1
PLAIN_EVERY_UNKNOWN_TOTAL = 100


class ProgressDisplay:
    """Feed it `predict_iter`'s progress; `close()` ends the bar's line.

    On a terminal the bar is redrawn in place at most ten times a second. Elsewhere (a log, a
    pipe, CI) it writes a plain line at each tenth of the run, or every 100 images when the total
    is unknown, so logs stay short and readable.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._last_draw = -float("inf")
        self._drawn = False
        self._last_step = 0

    def __call__(self, progress: Progress) -> None:
        if self._tty:
            now = self._clock()
            if now - self._last_draw >= REDRAW_EVERY_S or progress.done == progress.total:
                self._last_draw = now
                self._draw(progress)
        else:
            self._plain(progress)

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def _draw(self, progress: Progress) -> None:
        text = status(progress)
        columns = shutil.get_terminal_size((80, 24)).columns
        if progress.total:
            room = columns - len(text) - 4
            if room >= 10:
                width = min(room, 40)
                filled = round(width * progress.done / progress.total)
                text = f"[{'#' * filled}{'.' * (width - filled)}] {text}"
        self._stream.write("\r\x1b[K" + text[: columns - 1])
        self._stream.flush()
        self._drawn = True

    def _plain(self, progress: Progress) -> None:
        if progress.total:
            step = progress.done * 10 // progress.total
        else:
            step = progress.done // PLAIN_EVERY_UNKNOWN_TOTAL
        if step > self._last_step:
            self._last_step = step
            self._stream.write(status(progress) + "\n")
            self._stream.flush()


def status(progress: Progress) -> str:
    """`12/40 images (30%), 1 failed, 3.2 images/s, 9 s left`."""
    rate = progress.done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
    if progress.total:
        parts = [f"{progress.done}/{progress.total} images ({progress.done / progress.total:.0%})"]
    else:
        parts = [f"{progress.done} images"]
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if rate > 0:
        parts.append(f"{rate:.1f} images/s")
        if progress.total and progress.done < progress.total:
            parts.append(f"{_duration((progress.total - progress.done) / rate)} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
