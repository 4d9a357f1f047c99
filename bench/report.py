"""A run's results as markdown (full for docs/benchmark.md, short for the README), JSON and a plot."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from bench import analysis, plot
from bench.plot import label, legend

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _cell(text: Any) -> str:
    """Text that cannot break a markdown table row."""
    return " ".join(str(text).replace("|", "/").split())


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


MODEL_NAMES = {"none": "–", "nearfree": "near-free (pooling + Dense)"}


def _model(result: dict[str, Any], name: str) -> str:
    """A target's network as a table cell."""
    model = analysis.model_of(result, name)
    return MODEL_NAMES.get(model, model)


def _models(result: dict[str, Any]) -> str:
    """The catalogue networks the run served: "MobileNetV2" or "MobileNetV2 and ResNet50"."""
    names = {analysis.model_of(result, p["target"]) for p in result.get("points", [])}
    served = [m for m in (analysis.MODEL, analysis.RESNET50) if m in names]
    return " and ".join(served or [analysis.MODEL])


def _kernels(counts: dict[str, int] | None, top: int = 3) -> str:
    """The kernels OpenVINO's CPU plugin chose, most used first: "brgconv_avx512 x35, ..."."""
    if not counts:
        return ""
    items = list(counts.items())
    shown = ", ".join(f"{name} x{n}" for name, n in items[:top])
    rest = sum(n for _, n in items[top:])
    return shown + (f", +{rest} other" if rest else "")


def _served(entry: dict[str, Any]) -> str:
    runtime = str(entry.get("runtime") or "?")
    if entry.get("precision") and runtime != "keras":
        runtime += f" {entry['precision']}"
    if entry.get("max_abs_diff") is not None and runtime != "keras":
        runtime += f" (max abs diff {entry['max_abs_diff']:.1e})"
    if entry.get("max_batch_size"):
        runtime += f"; max batch {entry['max_batch_size']}"
        if entry.get("configured_max_batch_size"):
            runtime += f" (of {entry['configured_max_batch_size']}, by calibration)"
    if entry.get("kernels"):
        runtime += f"; kernels: {_kernels(entry['kernels'])}"
    if entry.get("note"):
        runtime += f"; {entry['note']}"
    return runtime


def header(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    plan = result["plan"]
    photos = ", ".join(
        f"{v}: {d['count']} photos, {d['bytes_mean'] / 1024:.0f} KB mean"
        for v, d in result["images"].items()
    )
    memory = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    flags = ", ".join(m.get("cpu_flags") or []) or "none of AVX2/AVX-512/VNNI/BF16/AMX"
    lines = [
        f"Run of {result['date']} on {m['cpu']} ({flags}; {m['cores']} cores{memory}), load average "
        f"{m['load_avg_start'][0]:.1f} at start and {m.get('load_avg_end', [0])[0]:.1f} at end; "
        f"took {result.get('wall_s', 0) / 60:.1f} min. Command: `{result['command']}`",
        "",
        f"MobileNetV2, `weights=None`; {photos}; closed loop on 127.0.0.1 (one keep-alive "
        f"connection per client), {plan['warmup_s']:g} s warm-up + {plan['measure_s']:g} s "
        "measured per point.",
    ]
    resnet = [n for n in plan.get("targets", []) if analysis.RESNET50.lower() in n]
    if resnet:
        clients = ", ".join(map(str, plan.get("resnet50_clients") or []))
        sizes = ", ".join(map(str, plan.get("resnet50_raw_sizes") or []))
        lines += [
            "",
            f"ResNet50 (`weights=None`, about 13x MobileNetV2's arithmetic per image) is measured "
            f"the same way but, to keep the run short, only at {clients} clients, and its raw "
            f"limits at batch sizes {sizes} in one pass (MobileNetV2's: every size, "
            f"{plan.get('raw_passes', 1)} passes). The model column says which network each "
            "row serves; ratios to raw limits are to the same network's.",
        ]
    return lines


def raw_table(result: dict[str, Any]) -> list[str]:
    if not result.get("raw"):
        return ["No raw limit in this run (see `--targets`)."]
    lines = [
        "| model | limit | best img/s | at batch | batch-1 latency (ms) | img/s by batch | passes (img/s) | how |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in result.get("raw", {}):
        limit = analysis.raw_limit(result, name)
        model = _model(result, name)
        if limit is None:
            note = _cell(analysis.raw_note(result, name))
            lines.append(f"| {model} | {label(result, name)} | {note} | | | | | |")
            continue
        by_batch = ", ".join(f"{r['batch']}: {r['img_s']:.0f}" for r in limit["by_batch"])
        passes = ", ".join(f"{v:.1f}" for v in limit["passes"])
        lines.append(
            f"| {model} | {label(result, name)} | {limit['best_img_s']:.1f} | {limit['best_batch']} | "
            f"{limit['batch1_latency_ms']:.1f} | {by_batch} | {passes} | {limit['detail']}; "
            f"`{limit['command']}` |"
        )
    return lines


def targets_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| model | target | serves | command | ready (s) | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in result.get("targets", {}).items():
        model = _model(result, name)
        if t.get("status") != "ok":
            reason = _cell(t.get("reason", "?"))[:240]
            lines.append(
                f"| {model} | {t.get('label', name)} | {t.get('status')}: {reason} | "
                f"`{t['command']}` | – | – |"
            )
            continue
        lines.append(
            f"| {model} | {t.get('label', name)} | {_served(t)} | `{t['command']}` | "
            f"{_f(t.get('ready_s'))} | {_f(t.get('peak_rss_mb'), '{:.0f}')} |"
        )
    return lines


def load_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| model | target | clients | img/s | p50 ms | p99 ms | errors | mean batch | server CPU (cores) | other CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in result.get("points", []):
        tries = p.get("tries", 1)
        noise = _f(p.get("other_cpu_cores"), "{:.2f}") + (
            f" (quietest of {tries})" if tries > 1 else ""
        )
        lines.append(
            f"| {_model(result, p['target'])} | {label(result, p['target'])} | "
            f"{p['concurrency']} | {p['img_s']:.1f} | "
            f"{_f(p['p50_ms'])} | {_f(p['p99_ms'])} | {p['errors']} | {_f(p['mean_batch'])} | "
            f"{p['server_cpu_cores']:.2f} | {noise} |"
        )
    return lines


def ratio_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"| model | target at {analysis.top_clients(result)} clients | img/s | x ceiling | x raw Keras | x raw OpenVINO FP32 | x raw OpenVINO INT8 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in analysis.ratios(result):
        lines.append(
            f"| {_model(result, row['target'])} | {label(result, row['target'])} | "
            f"{row['img_s']:.1f} | {_x(row['vs_ceiling'])} | "
            f"{_x(row['vs_raw-keras'])} | {_x(row['vs_raw-openvino'])} | {_x(row['vs_raw-int8'])} |"
        )
    return lines


def spread_lines(result: dict[str, Any]) -> list[str]:
    data = result.get("spread", {})
    starts = data.get("starts", [])
    if not starts:
        return []
    stats = analysis.default_spread(result)
    rounds = data.get("rounds")
    how = (
        f"started one after another, then measured in {rounds} interleaved rounds, the order "
        "rotating; each start's figures are the median of its rounds"
        if rounds
        else "start 1 is the one measured at every client count above"
    )
    lines = [
        f"{len(starts)} fresh starts of {label(result, 'default')}, {data['clients']} clients "
        f"({how}):",
        "",
        "| start | serves | batch cap chosen | ready (s) | img/s | img/s by round | p50 ms | p99 ms | mean batch | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in starts:
        if "img_s" not in s:
            lines.append(f"| {s['start']} | {_cell(s.get('skipped', '?'))[:200]} | | | | | | | | |")
            continue
        by_round = ", ".join(f"{v:.1f}" for v in s.get("rounds_img_s", [])) or "–"
        cap = _f(s.get("max_batch_size"), "{}")
        if s.get("max_batch_size") and s.get("configured_max_batch_size"):
            cap += f" of {s['configured_max_batch_size']}"
        lines.append(
            f"| {s['start']} | {s.get('runtime')} | {cap} | {_f(s.get('ready_s'))} | "
            f"{s['img_s']:.1f} | {by_round} | {_f(s['p50_ms'])} | {_f(s['p99_ms'])} | "
            f"{_f(s.get('mean_batch'))} | {s['errors']} |"
        )
    if stats:
        lines += [
            "",
            f"Median {stats['median']:.1f} img/s ±{stats['max_dev_pct']:.1f}% over the "
            f"{stats['n']} starts (± is the largest deviation of a start from the median), "
            f"min {stats['min']:.1f}, max {stats['max']:.1f}.",
        ]
    return lines


def side_by_side_lines(result: dict[str, Any]) -> list[str]:
    """The ceiling, and the near-free model and MobileNetV2's default at 1 and 2 workers, in
    interleaved passes."""
    section = result.get("side_by_side")
    if not section or not section.get("points"):
        return ["Not measured (needs at least two of the ceiling and the near-free targets)."]
    names = ", ".join(label(result, n) for n in section["targets"])
    clients = " and ".join(str(c) for c in section["clients"])
    lines = [
        f"{names}: all started, then measured in {section['passes']} interleaved passes (each "
        f"pass every server at {clients} clients, the order of the servers rotating from pass "
        "to pass). The front-end and worker checks (Targets, below) compare these medians.",
        "",
        "| target | clients | img/s by pass | median img/s | median p50 ms | median server CPU ms/request |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in section["targets"]:
        for c in section["clients"]:
            rates = analysis.side_by_side(result, name, c)
            if not rates:
                continue
            p50 = analysis.side_by_side(result, name, c, "p50_ms")
            cores = analysis.side_by_side(result, name, c, "server_cpu_cores")
            cpu = [k / r * 1e3 for k, r in zip(cores, rates, strict=False) if r]
            lines.append(
                f"| {label(result, name)} | {c} | {', '.join(f'{r:.1f}' for r in rates)} | "
                f"{statistics.median(rates):.1f} | "
                f"{_f(statistics.median(p50) if p50 else None)} | "
                f"{_f(statistics.median(cpu) if cpu else None, '{:.2f}')} |"
            )
    for name, reason in section.get("skipped", {}).items():
        lines.append(f"| {label(result, name)} | | {_cell(reason)[:200]} | | | |")
    return lines


def keras_vs_raw_lines(result: dict[str, Any]) -> list[str]:
    """`--runtime keras` and the raw Keras limit measured in turn (bench/run.py)."""
    section = result.get("keras_vs_raw")
    if not section:
        return ["Not measured (needs the `keras` and `raw-keras` targets)."]
    if section.get("skipped"):
        return [f"`--runtime keras` did not start: {_cell(section['skipped'])[:300]}"]
    found = analysis.keras_against_raw(result)
    lines = [
        f"{label(result, 'keras')} started once and kept up; then {section['passes']} passes, "
        "each the raw Keras limit (a process of its own, the server idle) and then the server "
        f"at {section['clients']} clients. The check against the raw limit (Targets, below) "
        "compares the medians.",
        "",
        "| pass | raw Keras limit, img/s (at batch) | --runtime keras, img/s | ratio |",
        "| --- | --- | --- | --- |",
    ]
    raws = {r.get("pass"): r for r in section.get("raw", [])}
    for point in section.get("points", []):
        if point["concurrency"] != section["clients"]:
            continue
        raw = raws.get(point["pass"], {})
        best = raw.get("best_img_s")
        reason = raw.get("skipped") or raw.get("unavailable") or "not measured"
        cell = f"{best:.1f} ({raw.get('best_batch')})" if best else _cell(reason)
        ratio = f"{point['img_s'] / best:.2f}x" if best else "–"
        lines.append(f"| {point['pass']} | {cell} | {point['img_s']:.1f} | {ratio} |")
    if found:
        lines += [
            "",
            f"Medians: {found['a']:.1f} against {found['b']:.1f} img/s "
            f"({found['a'] / found['b']:.2f}x).",
        ]
    by_clients = analysis.keras_by_clients(result)
    if len(by_clients) >= 2:
        lines += [
            "",
            "In the same passes, after the point at "
            f"{section['clients']} clients, the server at the other client counts (the check "
            "that throughput never falls as clients rise compares these medians):",
            "",
            "| clients | img/s by pass | median img/s |",
            "| --- | --- | --- |",
        ]
        for clients, values in sorted(by_clients.items()):
            shown = ", ".join(f"{v:.1f}" for v in values)
            lines.append(f"| {clients} | {shown} | {statistics.median(values):.1f} |")
    return lines


def _by_round(figure: dict[str, Any]) -> str:
    """A figure's img/s in each interleaved round ("–" from a run without rounds)."""
    rounds = figure.get("rounds_img_s") or []
    return ", ".join(f"{v:.1f}" for v in rounds) or "–"


def multi_photo_lines(result: dict[str, Any]) -> list[str]:
    """8 photos per request against 1 (bench/multi_photo.py)."""
    section = result.get("multi_photo")
    if not section:
        return ["Not measured (target `multi-photo`)."]
    server = section.get("server", {})
    if server.get("status") != "ok":
        reason = _cell(server.get("reason", "?"))[:300]
        return [f"Not measured: the server was {server.get('status', '?')}: {reason}"]
    n = section["per_request"]
    lines = [
        f"One start of {server.get('label')} (`{server.get('command')}`, serves "
        f"{_served(server)}), {section['clients']} clients, {n} photos per request (a part "
        "named `image` per photo, the form the Python SDK's `predict_many` sends) against 1. "
        f"{section['clients']} clients of {n} photos have at most {section['clients'] * n} "
        "images waiting (kerasserve's default `--max-queue` lets 256 wait; a photo past it is "
        "answered 503, counted in errors)"
        + (
            f"; the two measured in {section['rounds']} interleaved rounds, each figure the "
            "median of its rounds"
            if section.get("rounds", 1) > 1
            else ""
        )
        + ":",
        "",
        "| photos per request | img/s by round | img/s | requests/s | p50 ms (per request) | p99 ms | mean batch | errors | other CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in section.get("points", []):
        lines.append(
            f"| {p['photos_per_request']} | {_by_round(p)} | {p['img_s']:.1f} | {p['req_s']:.1f} | "
            f"{_f(p['p50_ms'])} | {_f(p['p99_ms'])} | {_f(p['mean_batch'])} | {p['errors']} | "
            f"{_f(p.get('other_cpu_cores'), '{:.2f}')} |"
        )
    summary = analysis.multi_photo(result)
    if summary and summary["img_s_ratio"] is not None:
        lines += [
            "",
            f"{n} photos per request: {_x(summary['img_s_ratio'])} the images/s of one photo per "
            f"request ({summary['many']['img_s']:.1f} vs {summary['one']['img_s']:.1f}), "
            f"p50 per request {_f(summary['many']['p50_ms'])} vs {_f(summary['one']['p50_ms'])} ms.",
        ]
    return lines


def batch_choice_lines(result: dict[str, Any]) -> list[str]:
    """OpenVINO's start-up batch calibration against every fixed cap (bench/batch_choice.py)."""
    section = result.get("batch_choice")
    if not section:
        return ["Not measured (target `batch-choice`)."]
    calibrated = section.get("calibrated") or {}
    lines = [
        f"`kerasserve serve --runtime {section.get('runtime', 'openvino')}` (MobileNetV2), a "
        f"fresh start per row, each at {section['clients']} clients: first with its start-up "
        "batch calibration (the default), then with `--no-calibrate-batch` and each fixed "
        "`--max-batch-size`"
        + (
            f"; every start kept up and measured in {section['rounds']} interleaved rounds, "
            "each figure the median of its rounds"
            if section.get("rounds", 1) > 1
            else ""
        )
        + ". The live tuner learns from traffic only on Keras; OpenVINO keeps what calibration "
        "chose at start-up.",
        "",
        "| start | batch cap | img/s by round | img/s | p50 ms | p99 ms | mean batch | errors | ready (s) | other CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [("calibrated", calibrated)] + [("fixed", f) for f in section.get("fixed", [])]
    for kind, f in rows:
        if "img_s" not in f:
            lines.append(
                f"| {kind} | {_cell(f.get('skipped', 'not measured'))[:200]} | | | | | | | | |"
            )
            continue
        cap = _f(f.get("max_batch_size") if kind == "calibrated" else f.get("size"), "{}")
        if kind == "calibrated":
            measured = f.get("throughput_by_batch") or {}
            cap += " chosen" + (
                " (idle img/s by batch: "
                + ", ".join(f"{k}: {float(v):.0f}" for k, v in measured.items())
                + ")"
                if measured
                else ""
            )
        lines.append(
            f"| {kind} | {cap} | {_by_round(f)} | {f['img_s']:.1f} | {_f(f.get('p50_ms'))} | "
            f"{_f(f.get('p99_ms'))} | "
            f"{_f(f.get('mean_batch'))} | {f.get('errors')} | {_f(f.get('ready_s'))} | "
            f"{_f(f.get('other_cpu_cores'), '{:.2f}')} |"
        )
    summary = analysis.batch_choice(result)
    if summary and summary["share_of_best"] is not None:
        at_chosen = summary["fixed_at_chosen_img_s"]
        lines += [
            "",
            f"Calibration chose {summary['chosen']}: {summary['calibrated_img_s']:.1f} img/s, "
            f"{summary['share_of_best'] * 100:.0f}% of the best fixed cap ({summary['best_size']}: "
            f"{summary['best_img_s']:.1f} img/s)"
            + (
                f"; the fixed cap {summary['chosen']} measured {at_chosen:.1f} img/s "
                f"(rank {summary['chosen_rank']} of {len(section.get('fixed', []))})."
                if at_chosen is not None
                else "."
            ),
        ]
    choices = analysis.spread_choices(result)
    if choices:
        lines += [
            "",
            f"The {len(choices)} fresh starts of the default target (Spread, above) chose "
            f"batch caps {', '.join(map(str, choices))}.",
        ]
    return lines


def checks_table(result: dict[str, Any]) -> list[str]:
    lines = ["| target | measured | met | figures |", "| --- | --- | --- | --- |"]
    for c in result.get("checks", []):
        met = {True: "**met**", False: "**missed**", None: "not measured"}[c["met"]]
        lines.append(f"| {c['goal']} | {_f(c['measured'], '{:.2f}')} | {met} | {c['detail']} |")
    return lines


def profile_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, prof in (result.get("profiles") or {}).items():
        if "unavailable" in prof:
            lines += ["", f"Profile of {label(result, name)}: {prof['unavailable']}"]
            continue
        cpu = ", ".join(
            f"{k} {v:.2f}" for k, v in list(prof.get("cpu_cores_by_thread", {}).items())[:6]
        )
        top = "; ".join(f"{k} {v:.2f}" for k, v in prof["self"][:6])
        lines += [
            "",
            f"Profile of {label(result, name)} (32 clients, {prof['img_s_while_profiled']:.1f} "
            f"img/s under py-spy): CPU cores by thread: {cpu}. Most samples innermost: {top}.",
        ]
    return lines


def markdown(result: dict[str, Any]) -> str:
    """Every table of the run: what docs/benchmark.md and latest.md show."""
    sections = [
        header(result),
        ["", "### Raw limits (in-process, no HTTP, a process of their own)", ""],
        raw_table(result),
        ["", "### Servers", ""],
        targets_table(result),
        ["", "### Under load, small photos", ""],
        load_table(result),
        ["", f"### Ratios at {analysis.top_clients(result)} clients, same run", ""],
        ratio_table(result),
        ["", "### Spread", ""],
        spread_lines(result) or ["Not measured: the default target was not run, or did not start."],
        ["", "### Front end and workers, side by side", ""],
        side_by_side_lines(result),
        ["", "### --runtime keras against the raw Keras limit, in turn", ""],
        keras_vs_raw_lines(result),
        ["", "### 8 photos per request vs 1", ""],
        multi_photo_lines(result),
        ["", "### OpenVINO's batch choice: start-up calibration vs fixed caps", ""],
        batch_choice_lines(result),
        ["", "### Targets", ""],
        checks_table(result),
        profile_lines(result),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


def short_markdown(result: dict[str, Any]) -> str:
    """The README's summary: img/s (p50 / p99 ms) at each client count, and the targets."""
    levels = sorted({p["concurrency"] for p in result.get("points", [])})
    head = " | ".join(f"{c} client{'s' if c > 1 else ''}" for c in levels)
    lines = [
        f"Run of {result['date']}, {result['machine']['cores']} cores, {_models(result)}, small "
        f"photos; img/s (p50 / p99 ms). Command: `{result['command']}`",
        "",
        f"| model | target | {head} | x ceiling at {analysis.top_clients(result)} |",
        "| --- | --- | " + " | ".join("---" for _ in levels) + " | --- |",
    ]
    shares = {r["target"]: r["vs_ceiling"] for r in analysis.ratios(result)}
    for target in dict.fromkeys(p["target"] for p in result.get("points", [])):
        cells = []
        for c in levels:
            p = analysis.point(result, target, c)
            cells.append(
                "–"
                if p is None
                else f"{p['img_s']:.1f} ({_f(p['p50_ms'], '{:.0f}')} / {_f(p['p99_ms'], '{:.0f}')})"
            )
        lines.append(
            f"| {_model(result, target)} | {label(result, target)} | {' | '.join(cells)} | "
            f"{_x(shares.get(target))} |"
        )
    for name, t in result.get("targets", {}).items():
        if t.get("status") != "ok":
            lines.append(
                f"| {_model(result, name)} | {t.get('label', name)} | {t.get('status')} | "
                + "| " * len(levels)
            )
    raws = []
    for name in result.get("raw", {}):
        limit = analysis.raw_limit(result, name)
        raws.append(
            f"{legend(result, name)} {limit['best_img_s']:.1f} img/s (batch {limit['best_batch']})"
            if limit
            else f"{legend(result, name)}: {analysis.raw_note(result, name)}"
        )
    stats = analysis.default_spread(result)
    lines.append("")
    if raws:
        lines.append("Raw limits: " + "; ".join(raws) + ".")
    if stats:
        lines.append(
            f"Default target over {stats['n']} fresh starts at {analysis.top_clients(result)} clients: median "
            f"{stats['median']:.1f} img/s ({stats['min']:.1f}-{stats['max']:.1f}, "
            f"±{stats['max_dev_pct']:.1f}%)."
        )
    multi = analysis.multi_photo(result)
    if multi and multi["img_s_ratio"] is not None:
        lines.append(
            f"{multi['per_request']} photos per request vs 1 (default target, "
            f"{result['multi_photo']['clients']} clients): {multi['many']['img_s']:.1f} vs "
            f"{multi['one']['img_s']:.1f} img/s ({_x(multi['img_s_ratio'])})."
        )
    choice = analysis.batch_choice(result)
    if choice and choice["share_of_best"] is not None:
        lines.append(
            f"OpenVINO's start-up batch calibration chose {choice['chosen']}: "
            f"{choice['share_of_best'] * 100:.0f}% of the best fixed cap's img/s "
            f"({choice['best_size']}: {choice['best_img_s']:.1f})."
        )
    verdicts = [
        f"{c['name']} {'met' if c['met'] else 'missed' if c['met'] is False else 'not measured'}"
        + (f" ({c['measured']:.2f})" if c["measured"] is not None else "")
        for c in result.get("checks", [])
    ]
    lines.append("Targets: " + "; ".join(verdicts) + ".")
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
    plot.plot(result, paths["png"])
    return paths


def replace_section(path: Path, body: str) -> bool:
    """Replace the text between the file's bench markers; False when they are absent."""
    if not path.exists():
        return False
    text = path.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    section = (
        f"{START}\n<!-- written by `python -m bench`; do not edit by hand -->\n\n{body}\n{END}"
    )
    path.write_text(pattern.sub(lambda _: section, text, count=1))
    return True
