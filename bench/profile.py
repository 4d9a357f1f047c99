"""Where a server's time goes under load: py-spy samples its Python threads during a window.

`py-spy record --format raw --threads --nonblocking` writes collapsed stacks (one line per
distinct stack: `thread (tid): name;frame;...;frame count`). The summary gives, per thread
group (event loop, decode pool, model thread), the share of the window it was on a CPU, and
the functions with the most samples at the top of their stack (self time) and anywhere in
it (inclusive). TensorFlow's and OpenVINO's own worker threads are native, so they are not
sampled: the model thread's time is the Python side of a batch, its waits included.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadgen import closed_loop
from bench.servers import HOST, Running

RATE = 100
_LINE = re.compile(r"^thread \((\d+)\): ([^;]*);(.*) (\d+)$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def summarize(raw: str, window_s: float, rate: int = RATE, top: int = 12) -> dict[str, Any]:
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        _, name, stack, count_text = match.groups()
        count = int(count_text)
        total += count
        threads[re.sub(r"_\d+$", "", name) or "?"] += count
        frames = [_function(f) for f in stack.split(";") if f]
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    expected = max(1.0, window_s * rate)
    return {
        "samples": total,
        "threads_busy": {k: round(v / expected, 3) for k, v in threads.most_common()},
        "self": [(k, round(v / expected, 3)) for k, v in self_time.most_common(top)],
        "inclusive": [(k, round(v / expected, 3)) for k, v in inclusive.most_common(top)],
        "unit": "fraction of the window's wall-clock time (1.0 = one core busy all along)",
    }


def _function(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    func, where = match.groups()
    return f"{func} ({where})"


async def profile_point(
    server: Running,
    requests: list[bytes],
    concurrency: int,
    warmup_s: float,
    measure_s: float,
    work: Path,
) -> dict[str, Any]:
    """Run the load once more with py-spy attached during the window (not a table point)."""
    exe = shutil.which("py-spy")
    if exe is None:
        return {"unavailable": "py-spy is not installed (pip install py-spy)"}
    out = work / f"profile-{server.target.name}.txt"
    out.unlink(missing_ok=True)
    state: dict[str, Any] = {}

    async def start() -> None:
        state["proc"] = await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(server.pid),
            "--rate",
            str(RATE),
            "--duration",
            str(int(measure_s)),
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "--output",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def end() -> None:
        proc = state["proc"]
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
        state["log"] = stdout.decode(errors="replace")[-400:]

    result = await closed_loop(
        HOST,
        server.port,
        requests,
        concurrency,
        warmup_s,
        float(int(measure_s)),
        on_window_start=start,
        on_window_end=end,
    )
    if not out.exists():
        return {"unavailable": f"py-spy wrote nothing: {state.get('log', '')}"}
    summary = summarize(out.read_text(), float(int(measure_s)))
    summary.update(
        file=str(out),
        img_s_while_profiled=len(result.ok) / result.window_s,
        command=f"py-spy record --pid <server pid> --rate {RATE} --duration {int(measure_s)} --format raw --threads --nonblocking",
    )
    return summary
