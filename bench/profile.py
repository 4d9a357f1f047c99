"""Where a server's time goes under load: per-thread CPU, and py-spy's samples of its stacks.

CPU per thread comes from /proc/<pid>/task/*/stat over the window (exact, and it includes
the native pools of TensorFlow and OpenVINO, which py-spy cannot name); Python threads are
named by a `py-spy dump`.

`py-spy record --format raw --threads --idle --nonblocking` writes collapsed stacks (one line
per distinct stack: `thread (tid): name;frame;...;frame count`). Idle threads are sampled too
(`--idle`), because the model thread of the Keras runtime sleeps in the OS while TensorFlow's
own native pool runs the batch: without `--idle` a saturated model looks idle. A sample is
"waiting" when its innermost frame is a known wait (a pool worker blocked on its queue, a
condition variable, the event loop's native poll); everything else is work.

The summary gives, per thread group (event loop, decode pool, model thread...), how many of
its threads' samples were work ("busy", in threads: 1.0 = one thread working the whole
window; for the model thread it is its utilisation), and the functions with the most work
samples innermost (self) and anywhere on the stack (inclusive).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadgen import closed_loop
from bench.servers import HOST, Running

RATE = 100
_LINE = re.compile(r"^thread \((\d+)\): ([^;]*);(.*) (\d+)$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
# Innermost frames that mean "this thread waits for something to do".
WAITS = {
    "Condition.wait (threading.py)",
    "Condition._acquire_restore (threading.py)",
    "Event.wait (threading.py)",
    "_worker (concurrent/futures/thread.py)",  # a pool thread blocked in queue.get (C)
    "Runner.run (asyncio/runners.py)",  # uvloop's poll is native: no Python frame below
    "BaseEventLoop._run_once (asyncio/base_events.py)",
    "EpollSelector.select (selectors.py)",
    "select (selectors.py)",
}


def summarize(raw: str, window_s: float, rate: int = RATE, top: int = 12) -> dict[str, Any]:
    busy: Counter[str] = Counter()
    threads: dict[str, set[str]] = {}
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        tid, name, stack, count_text = match.groups()
        count = int(count_text)
        total += count
        group = re.sub(r"_\d+$", "", name) or "?"
        threads.setdefault(group, set()).add(tid)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames or frames[-1] in WAITS:
            continue
        busy[group] += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    expected = max(1.0, window_s * rate)
    main = sum(n for (name, n) in _thread_samples(raw) if name == "MainThread")
    ticks = float(main) if main else expected  # shares of the ticks py-spy actually took
    return {
        "samples": total,
        # With --idle every thread is sampled at every tick: the main thread's share of the
        # expected samples says how many py-spy managed (it falls behind on a busy machine).
        "coverage": round(main / expected, 3),
        "threads": {k: len(v) for k, v in threads.items()},
        "threads_busy": {
            k: round(busy[k] / ticks, 3) for k in sorted(threads, key=lambda k: -busy[k])
        },
        "self": [(k, round(v / ticks, 3)) for k, v in self_time.most_common(top)],
        "inclusive": [(k, round(v / ticks, 3)) for k, v in inclusive.most_common(top)],
        "unit": "threads busy over the window (1.0 = one thread working the whole window)",
    }


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """CPU seconds of every thread of `pid`: {tid: (OS thread name, seconds)}."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[task.name] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


def python_thread_names(exe: str, pid: int) -> dict[str, str]:
    """{tid: Python thread name} from `py-spy dump` (native threads are not listed)."""
    import subprocess

    try:
        dump = subprocess.run(
            [exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump, re.M))


def cpu_by_group(
    before: dict[str, tuple[str, float]],
    after: dict[str, tuple[str, float]],
    names: dict[str, str],
    window_s: float,
) -> dict[str, float]:
    """Cores used per thread group: Python threads by name, native ones by OS name."""
    groups: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        used = cpu - before.get(tid, (comm, 0.0))[1]
        name = names.get(tid)
        group = re.sub(r"_\d+$", "", name) if name else f"native {comm}"
        groups[group] = groups.get(group, 0.0) + used / window_s
    ordered = sorted(groups.items(), key=lambda kv: -kv[1])
    return {k: round(v, 3) for k, v in ordered if v >= 0.005}


def _thread_samples(raw: str) -> list[tuple[str, int]]:
    out = []
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if match:
            out.append((match.group(2), int(match.group(4))))
    return out


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
        state["cpu_before"] = thread_cpu(server.pid)
        state["t0"] = time.perf_counter()
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
            "--idle",
            "--nonblocking",
            "--output",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def end() -> None:
        state["cpu_after"] = thread_cpu(server.pid)
        state["cpu_window_s"] = time.perf_counter() - state["t0"]
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
    summary["cpu_cores_by_thread"] = cpu_by_group(
        state["cpu_before"],
        state["cpu_after"],
        python_thread_names(exe, server.pid),
        state["cpu_window_s"],
    )
    summary.update(
        file=str(out),
        img_s_while_profiled=len(result.ok) / result.window_s,
        command=f"py-spy record --pid <server pid> --rate {RATE} --duration {int(measure_s)} --format raw --threads --idle --nonblocking",
    )
    return summary
