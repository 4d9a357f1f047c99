"""From a run's results to the issue's targets, a markdown table, JSON, and the README section."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


# -- the raw limits and the phone ideal ---------------------------------------------------
def raw_limit(result: dict[str, Any], runtime: str) -> dict[str, Any] | None:
    """The best of a runtime's raw runs: highest img/s, lowest batch-1 latency, fastest decode."""
    runs = [r for r in result.get("raw", {}).get(runtime, []) if "unavailable" not in r]
    if not runs:
        return None
    best = max(runs, key=lambda r: r["best_img_s"])
    limit = {
        "best_img_s": best["best_img_s"],
        "best_batch": best["best_batch"],
        "infer_ms_per_img": best["infer_ms_per_img"],
        "batch1_latency_ms": min(r["batch1_latency_ms"] for r in runs),
        "runs": len(runs),
    }
    decodes = [r["decode"] for rs in result["raw"].values() for r in rs if "decode" in r]
    if decodes:
        limit["decode_ms"] = {
            v: min(d[v]["ms_per_img"] for d in decodes)
            for v in ("small", "phone")
            if v in decodes[0]
        }
    return limit


def ideal_img_s(decode_ms: float, infer_ms_per_img: float, cores: int = 2) -> float:
    """CPU-bound ideal of decode + inference on `cores` cores, decode overlapping inference.

    Inference at its best batch already keeps every core busy, so each image costs
    `infer_ms_per_img` of the whole machine; decoding is one thread per image and spreads
    over the cores: img/s = 1 / (decode_s / cores + infer_s_per_img).
    """
    return 1e3 / (decode_ms / cores + infer_ms_per_img)


def point(
    result: dict[str, Any], target: str, variant: str, concurrency: int
) -> dict[str, Any] | None:
    points: list[dict[str, Any]] = result.get("points", [])
    return next(
        (
            p
            for p in points
            if (p["target"], p["variant"], p["concurrency"]) == (target, variant, concurrency)
        ),
        None,
    )


# -- the targets -------------------------------------------------------------------
def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    cores = int(result.get("machine", {}).get("cores") or 2)
    keras = raw_limit(result, "keras")
    ks = point(result, "kerasserve-keras", "small", 32)
    seed = point(result, "seed-flask", "small", 32)
    one = point(result, "kerasserve-keras", "small", 1)
    phone = point(result, "kerasserve-keras", "phone", 32)
    ov = point(result, "kerasserve-openvino", "small", 32)
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        goal: str,
        measured: float | None,
        bound: float,
        higher: bool,
        detail: str,
        missing: str,
    ) -> None:
        if measured is None:
            out.append(
                {"name": name, "goal": goal, "measured": None, "met": None, "detail": missing}
            )
            return
        met = measured >= bound if higher else measured <= bound
        out.append({"name": name, "goal": goal, "measured": measured, "met": met, "detail": detail})

    if keras and ks:
        add(
            "batching vs raw",
            "kerasserve-keras, small, 32 clients >= 0.8x raw Keras limit",
            ks["img_s"] / keras["best_img_s"],
            0.8,
            True,
            f"{ks['img_s']:.1f} / {keras['best_img_s']:.1f} img/s",
            "",
        )
    else:
        add(
            "batching vs raw",
            "kerasserve-keras, small, 32 clients >= 0.8x raw Keras limit",
            None,
            0.8,
            True,
            "",
            "not measured",
        )
    if ks and seed and seed["img_s"] > 0:
        add(
            "batching vs seed",
            "kerasserve-keras, small, 32 clients >= 4x seed Flask",
            ks["img_s"] / seed["img_s"],
            4.0,
            True,
            f"{ks['img_s']:.1f} / {seed['img_s']:.1f} img/s",
            "",
        )
    else:
        add(
            "batching vs seed",
            "kerasserve-keras, small, 32 clients >= 4x seed Flask",
            None,
            4.0,
            True,
            "",
            "not measured",
        )
    if keras and one and one["p50_ms"] is not None:
        add(
            "waiting costs nothing",
            "kerasserve-keras, 1 client: p50 - raw batch-1 latency <= 10 ms",
            one["p50_ms"] - keras["batch1_latency_ms"],
            10.0,
            False,
            f"p50 {one['p50_ms']:.1f} ms vs raw {keras['batch1_latency_ms']:.1f} ms",
            "",
        )
    else:
        add(
            "waiting costs nothing",
            "kerasserve-keras, 1 client: p50 - raw batch-1 latency <= 10 ms",
            None,
            10.0,
            False,
            "",
            "not measured",
        )
    if keras and phone and "decode_ms" in keras and "phone" in keras["decode_ms"]:
        ideal = ideal_img_s(keras["decode_ms"]["phone"], keras["infer_ms_per_img"], cores)
        add(
            "phone photos",
            "kerasserve-keras, phone, 32 clients >= 0.7x ideal decode + inference",
            phone["img_s"] / ideal,
            0.7,
            True,
            f"{phone['img_s']:.1f} / {ideal:.1f} img/s (decode {keras['decode_ms']['phone']:.1f} ms, "
            f"infer {keras['infer_ms_per_img']:.1f} ms/img)",
            "",
        )
    else:
        add(
            "phone photos",
            "kerasserve-keras, phone, 32 clients >= 0.7x ideal decode + inference",
            None,
            0.7,
            True,
            "",
            "not measured",
        )
    ov_entry = result.get("targets", {}).get("kerasserve-openvino", {})
    if keras and ov:
        add(
            "past the framework",
            "kerasserve-openvino, small, 32 clients >= 1.5x raw Keras limit",
            ov["img_s"] / keras["best_img_s"],
            1.5,
            True,
            f"{ov['img_s']:.1f} / {keras['best_img_s']:.1f} img/s",
            "",
        )
    else:
        reason = ov_entry.get("reason") or "openvino not in --runtimes"
        add(
            "past the framework",
            "kerasserve-openvino, small, 32 clients >= 1.5x raw Keras limit",
            None,
            1.5,
            True,
            "",
            f"unavailable: {reason}",
        )
    return out


# -- markdown --------------------------------------------------------------------------------
def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _coverage(prof: dict[str, Any]) -> str:
    coverage = prof.get("coverage")
    if coverage is None or coverage >= 0.8:
        return ""
    return (
        f" (py-spy took only {coverage:.0%} of its samples: the machine was busy; read with care)"
    )


def _tries(point: dict[str, Any]) -> str:
    tries = point.get("tries", 1)
    return f" (quietest of {tries})" if tries > 1 else ""


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Run {result['date']} on {m['cpu']} ({m['cores']} cores), load average "
        f"{m['load_avg_start'][0]:.1f} at start, {m.get('load_avg_end', [0])[0]:.1f} at end; "
        f"took {result.get('wall_s', 0) / 60:.1f} min. Command: `{result['command']}`",
        "",
        "MobileNetV2, `weights=None`; closed loop on 127.0.0.1, "
        f"{result['plan']['warmup_s']:g} s warm-up + {result['plan']['measure_s']:g} s measured per point. "
        "Upload sets: "
        + ", ".join(
            f"{v} {d['count']} photos, {d['bytes_mean'] / 1024:.0f} KB mean"
            for v, d in result["images"].items()
        )
        + ".",
        "",
        "| target | runtime | command | ready (s) | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, t in result.get("targets", {}).items():
        if t.get("status") != "ok":
            lines.append(
                f"| {name} | unavailable: {t.get('reason', '?')[:200]} | `{t['command']}` | – | – |"
            )
            continue
        runtime = t.get("runtime") or "?"
        if t.get("max_abs_diff") is not None and runtime != "keras":
            runtime += f" (max abs diff {t['max_abs_diff']:.1e})"
        if t.get("configured_max_batch_size"):
            runtime += (
                f"; batches capped at {t['max_batch_size']} "
                f"(of {t['configured_max_batch_size']}) by calibration"
            )
        lines.append(
            f"| {name} | {runtime} | `{t['command']}` | {_f(t.get('ready_s'))} | {_f(t.get('peak_rss_mb'), '{:.0f}')} |"
        )
    lines += [
        "",
        "Raw in-process limit (`python -m bench.raw`, best of the runs before and after the load):",
        "",
        "| runtime | best img/s | at batch | batch-1 latency (ms) | img/s by batch | other CPU (cores) | command |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rt, runs in result.get("raw", {}).items():
        limit = raw_limit(result, rt)
        if limit is None:
            lines.append(
                f"| {rt} | unavailable: {runs[0].get('unavailable', '?')[:200]} | | | | | |"
            )
            continue
        best_run = max((r for r in runs if "unavailable" not in r), key=lambda r: r["best_img_s"])
        by_batch = ", ".join(f"{r['batch']}: {r['img_s']:.0f}" for r in best_run["by_batch"])
        others = [
            r["other_cpu_cores"]
            for r in best_run["by_batch"]
            if r.get("other_cpu_cores") is not None
        ]
        other = sum(others) / len(others) if others else None
        lines.append(
            f"| {rt} | {limit['best_img_s']:.1f} | {limit['best_batch']} | {limit['batch1_latency_ms']:.1f} | "
            f"{by_batch} | {_f(other, '{:.2f}')} | `{best_run.get('command', '')}` |"
        )
    keras = raw_limit(result, "keras")
    if keras and "decode_ms" in keras:
        dec = keras["decode_ms"]
        speedup = next(
            (r["decode"]["draft_speedup"] for r in result["raw"]["keras"] if "decode" in r), None
        )
        ideal = ideal_img_s(dec["phone"], keras["infer_ms_per_img"], int(m["cores"] or 2))
        lines += [
            "",
            f"Decode (`decode_image`, one thread): small {dec['small']:.1f} ms, phone {dec['phone']:.1f} ms "
            f"with scaled JPEG decoding ({_f(speedup)}x faster than without). Phone ideal = 1 / (decode_s / cores + "
            f"infer_s_per_img at best batch) = 1 / ({dec['phone']:.1f}/{m['cores']} + {keras['infer_ms_per_img']:.1f}) ms "
            f"= {ideal:.1f} img/s.",
        ]
    lines += [
        "",
        "| images | target | clients | img/s | p50 ms | p95 ms | p99 ms | errors | mean batch | server CPU (cores) | peak RSS MB | generator CPU (cores) | other CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in result.get("points", []):
        lines.append(
            f"| {p['variant']} | {p['target']} | {p['concurrency']} | {p['img_s']:.1f} | {_f(p['p50_ms'])} | "
            f"{_f(p['p95_ms'])} | {_f(p['p99_ms'])} | {p['errors']} | {_f(p['mean_batch'])} | "
            f"{p['server_cpu_cores']:.2f} | {_f(p['server_peak_rss_mb'], '{:.0f}')} | {p['generator_cpu_cores']:.2f} | "
            f"{_f(p.get('other_cpu_cores'), '{:.2f}')}{_tries(p)} |"
        )
    lines += ["", "| target of the issue | measured | met | detail |", "| --- | --- | --- | --- |"]
    for c in result.get("checks", []):
        met = {True: "**met**", False: "**missed**", None: "not measured"}[c["met"]]
        measured = "–" if c["measured"] is None else f"{c['measured']:.2f}"
        lines.append(f"| {c['goal']} | {measured} | {met} | {c['detail']} |")
    profiles = result.get("profiles") or {}
    for name, prof in profiles.items():
        if "unavailable" in prof:
            lines += ["", f"Profile of {name}: {prof['unavailable']}"]
            continue
        busy = ", ".join(
            f"{k} ({prof.get('threads', {}).get(k, '?')} threads) {v:.2f}"
            for k, v in list(prof["threads_busy"].items())[:4]
        )
        top = "; ".join(f"{k} {v:.2f}" for k, v in prof["self"][:6])
        cpu = ", ".join(
            f"{k} {v:.2f}" for k, v in list(prof.get("cpu_cores_by_thread", {}).items())[:6]
        )
        lines += [
            "",
            f"Profile of {name} (small, 32 clients, {prof['img_s_while_profiled']:.1f} img/s under py-spy; "
            f"`{prof['command']}`): CPU cores by thread (from /proc): {cpu}. "
            f"Python threads in work, not waiting (1.0 = one thread all along): {busy}. "
            f"Most samples innermost: {top}." + _coverage(prof),
        ]
    return "\n".join(lines) + "\n"


# -- files -----------------------------------------------------------------------------------
def write(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "latest.json",
        "md": out_dir / "latest.md",
        "png": out_dir / "latest.png",
    }
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(result))
    from bench import plot

    plot.plot(result, paths["png"])
    return paths


def update_readme(readme: Path, section: str, image: str) -> bool:
    """Replace the text between the README's bench markers; False when they are absent."""
    if not readme.exists():
        return False
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    body = f"{README_START}\n<!-- generated by `python -m bench`; do not edit by hand -->\n\n{section}\n![benchmark]({image})\n\n{README_END}"
    readme.write_text(pattern.sub(lambda _: body, text, count=1))
    return True
