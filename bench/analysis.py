"""From a run's raw results to its figures: limits, the spread, ratios, and the issue's targets.

Pure functions of the result dictionary `bench.run.run` returns (no I/O), so that tests can
hold every rule on hand-made results.
"""

from __future__ import annotations

import statistics
from typing import Any

KERASSERVE = ("default", "keras", "openvino", "int8")
HEADLINE_CLIENTS = 32
CEILING_SHARE = 0.8  # kerasserve's best runtime >= 0.8x the front-end ceiling
NEARFREE_SHARE = 0.9  # the near-free model >= 0.9x the ceiling: our own plumbing costs little
NEARFREE_P50_EXTRA_MS = 1.0  # and one client's p50 at most 1 ms over the ceiling's
SPREAD_PCT = 10.0  # every fresh start of the default target within 10 % of their median
WORKERS_SHARE = 0.95  # `--workers auto` (1 below 4 cores) >= 0.95x the other worker count
BATCH_CHOICE_SHARE = 0.9  # the start-up batch choice >= 0.9x the best fixed batch cap
MODEL = "MobileNetV2"
RESNET50 = "ResNet50"
# Each network's raw limits: Keras, OpenVINO FP32, OpenVINO INT8 (ratio columns in this order).
RAW_KINDS = ("raw-keras", "raw-openvino", "raw-int8")
RAW_BY_MODEL: dict[str, tuple[str, ...]] = {
    MODEL: RAW_KINDS,
    RESNET50: ("raw-resnet50-keras", "raw-resnet50-openvino", "raw-resnet50-int8"),
}


def model_of(result: dict[str, Any], name: str) -> str:
    """The network a target serves (MobileNetV2, ResNet50, "nearfree", "none" for the
    ceiling): as the run recorded it, else from the target's name (older results)."""
    entry = result.get("targets", {}).get(name) or {}
    if entry.get("model"):
        return str(entry["model"])
    if name.startswith(("resnet50-", "raw-resnet50-")):
        return RESNET50
    if name == "ceiling":
        return "none"
    if name.startswith("nearfree"):
        return "nearfree"
    return MODEL


def top_clients(result: dict[str, Any]) -> int:
    """The client count the headline figures are taken at (32; the quick smoke run: 8)."""
    return int(result.get("plan", {}).get("spread_clients") or HEADLINE_CLIENTS)


def raw_limit(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The best of a raw target's passes: highest img/s, lowest batch-1 latency."""
    runs = [r for r in result.get("raw", {}).get(name, []) if "by_batch" in r]
    if not runs:
        return None
    best = max(runs, key=lambda r: r["best_img_s"])
    return {
        "best_img_s": best["best_img_s"],
        "best_batch": best["best_batch"],
        "infer_ms_per_img": best["infer_ms_per_img"],
        "batch1_latency_ms": min(r["batch1_latency_ms"] for r in runs),
        "by_batch": best["by_batch"],
        "detail": best.get("detail"),
        "command": best.get("command"),
        "passes": [r["best_img_s"] for r in runs],
    }


def raw_note(result: dict[str, Any], name: str) -> str | None:
    """Why a raw target has no figure (skipped, or unavailable), None when it has one."""
    runs = result.get("raw", {}).get(name, [])
    if not runs or any("by_batch" in r for r in runs):
        return None
    first = runs[0]
    if "skipped" in first:
        return f"skipped: {first['skipped']}"
    return f"unavailable: {first.get('unavailable', '?')}"


def point(result: dict[str, Any], target: str, clients: int) -> dict[str, Any] | None:
    return next(
        (
            p
            for p in result.get("points", [])
            if p["target"] == target and p["concurrency"] == clients
        ),
        None,
    )


def side_by_side(
    result: dict[str, Any], target: str, clients: int, key: str = "img_s"
) -> list[float]:
    """A target's `key` in each interleaved pass of the side-by-side phase (bench/run.py's
    `run_side_by_side`), in pass order; [] when it was not measured there."""
    return [
        float(p[key])
        for p in sorted(result.get("side_by_side", {}).get("points", []), key=lambda p: p["pass"])
        if p["target"] == target and p["concurrency"] == clients and p.get(key) is not None
    ]


def compared(
    result: dict[str, Any], a: str, b: str, clients: int, key: str = "img_s"
) -> dict[str, Any] | None:
    """`a` against `b` at `clients`: the medians of their side-by-side passes (and the ratio
    within each pass) when both were measured there, else their points of the main phase."""
    xs, ys = side_by_side(result, a, clients, key), side_by_side(result, b, clients, key)
    if xs and ys:
        return {
            "a": statistics.median(xs),
            "b": statistics.median(ys),
            "passes": min(len(xs), len(ys)),
            "by_pass": list(zip(xs, ys, strict=False)),
        }
    pa, pb = point(result, a, clients), point(result, b, clients)
    if pa is None or pb is None or pa.get(key) is None or pb.get(key) is None:
        return None
    return {"a": float(pa[key]), "b": float(pb[key]), "passes": 0, "by_pass": []}


def keras_against_raw(result: dict[str, Any]) -> dict[str, Any] | None:
    """`--runtime keras` against the raw Keras limit measured in turn (bench/run.py's
    `run_keras_vs_raw`): the medians of the server's points and of the raw passes' best img/s,
    in `compared`'s form; None when that phase did not run."""
    section = result.get("keras_vs_raw", {})
    raws = {r["pass"]: r["best_img_s"] for r in section.get("raw", []) if "by_batch" in r}
    clients = section.get("clients")
    served = {
        p["pass"]: p["img_s"]
        for p in section.get("points", [])
        if clients is None or p["concurrency"] == clients
    }
    both = sorted(set(raws) & set(served))
    if not both:
        return None
    return {
        "a": statistics.median(served[k] for k in both),
        "b": statistics.median(raws[k] for k in both),
        "passes": len(both),
        "by_pass": [(served[k], raws[k]) for k in both],
    }


def _how(found: dict[str, Any], ratio: bool = True) -> str:
    """How `compared` found its figures, with each pass's ratio (or, with `ratio` False, its
    difference in ms)."""
    if not found["passes"]:
        return "(one point each, minutes apart)"
    by_pass = (
        ", ".join(f"{x / y:.2f}x" for x, y in found["by_pass"] if y)
        if ratio
        else ", ".join(f"{x - y:+.2f} ms" for x, y in found["by_pass"])
    )
    return f"(medians of {found['passes']} interleaved passes; by pass {by_pass})"


def spread(values: list[float]) -> dict[str, float] | None:
    """Median, min, max and the largest deviation from the median, in % of it."""
    if not values:
        return None
    median = statistics.median(values)
    deviation = max(abs(v - median) for v in values) / median * 100 if median else 0.0
    return {
        "n": len(values),
        "median": median,
        "min": min(values),
        "max": max(values),
        "max_dev_pct": deviation,
    }


def default_spread(result: dict[str, Any]) -> dict[str, float] | None:
    starts = result.get("spread", {}).get("starts", [])
    return spread([s["img_s"] for s in starts if "img_s" in s])


def headline(result: dict[str, Any], target: str) -> float | None:
    """A target's img/s at the top client count (32); for the default target, the median of its starts."""
    if target == "default":
        stats = default_spread(result)
        if stats is not None:
            return stats["median"]
    found = point(result, target, top_clients(result))
    return None if found is None else float(found["img_s"])


def best_kerasserve(result: dict[str, Any]) -> tuple[str, float] | None:
    """kerasserve's fastest runtime at the top client count, as (target, img/s)."""
    figures = [(t, headline(result, t)) for t in KERASSERVE]
    measured = [(t, v) for t, v in figures if v is not None]
    return max(measured, key=lambda tv: tv[1]) if measured else None


def keras_by_clients(result: dict[str, Any]) -> dict[int, list[float]]:
    """`--runtime keras`'s img/s at each client count in the passes of bench/run.py's
    `run_keras_vs_raw` (in pass order); {} when that phase did not run."""
    found: dict[int, list[float]] = {}
    points = result.get("keras_vs_raw", {}).get("points", [])
    for p in sorted(points, key=lambda p: p["pass"]):
        if p.get("img_s") is not None:
            found.setdefault(int(p["concurrency"]), []).append(float(p["img_s"]))
    return found


def rises_with_clients(result: dict[str, Any], target: str) -> list[dict[str, Any]]:
    """Each step between client counts: does throughput hold or rise (8 >= 1, 32 >= 8)?

    For `keras`, the medians of the passes in which it was measured at every client count
    (`keras_by_clients`), when there are two counts or more; else the main phase's points,
    one each, measured a few seconds apart."""
    by_clients = {
        p["concurrency"]: float(p["img_s"])
        for p in result.get("points", [])
        if p["target"] == target
    }
    passes = keras_by_clients(result) if target == "keras" else {}
    if len(passes) >= 2:
        by_clients = {c: statistics.median(v) for c, v in passes.items()}
    levels = sorted(by_clients)
    steps = []
    for low, high in zip(levels, levels[1:], strict=False):
        a, b = by_clients[low], by_clients[high]
        steps.append(
            {
                "from": low,
                "to": high,
                "from_img_s": a,
                "to_img_s": b,
                "holds": b >= a,
                "passes": len(passes.get(low, [])) if len(passes) >= 2 else 0,
            }
        )
    return steps


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every server target at the top client count against the ceiling and the raw limits of
    its own network (`vs_raw-keras` of a ResNet50 target: against raw ResNet50 Keras; targets
    of no catalogue network, the ceiling and the near-free model, against MobileNetV2's)."""
    ceiling = headline(result, "ceiling")
    rows = []
    for target in dict.fromkeys(p["target"] for p in result.get("points", [])):
        value = headline(result, target)
        if value is None:
            continue
        model = model_of(result, target)
        row: dict[str, Any] = {"target": target, "model": model, "img_s": value}
        row["vs_ceiling"] = value / ceiling if ceiling else None
        for kind, name in zip(RAW_KINDS, RAW_BY_MODEL.get(model, RAW_KINDS), strict=True):
            limit = raw_limit(result, name)
            row[f"vs_{kind}"] = value / limit["best_img_s"] if limit else None
        rows.append(row)
    return rows


def multi_photo(result: dict[str, Any]) -> dict[str, Any] | None:
    """8 photos per request against 1: both points, and the ratios of img/s and req/s."""
    points = {p["photos_per_request"]: p for p in result.get("multi_photo", {}).get("points", [])}
    if 1 not in points or len(points) < 2:
        return None
    n = max(points)
    one, many = points[1], points[n]
    return {
        "per_request": n,
        "one": one,
        "many": many,
        "img_s_ratio": many["img_s"] / one["img_s"] if one["img_s"] else None,
        "req_s_ratio": many["req_s"] / one["req_s"] if one["req_s"] else None,
    }


def batch_choice(result: dict[str, Any]) -> dict[str, Any] | None:
    """The start-up calibration's batch cap against the fixed caps: which it chose, the best
    fixed cap, and the calibrated start's img/s as a share of the best fixed cap's."""
    section = result.get("batch_choice") or {}
    fixed = [f for f in section.get("fixed", []) if "img_s" in f]
    calibrated = section.get("calibrated") or {}
    if not fixed:
        return None
    best = max(fixed, key=lambda f: f["img_s"])
    chosen = calibrated.get("max_batch_size")
    at_chosen = next((f for f in fixed if f["size"] == chosen), None)
    value = calibrated.get("img_s")
    return {
        "chosen": chosen,
        "calibrated_img_s": value,
        "best_size": best["size"],
        "best_img_s": best["img_s"],
        "share_of_best": value / best["img_s"] if value is not None and best["img_s"] else None,
        "fixed_at_chosen_img_s": at_chosen["img_s"] if at_chosen else None,
        "chosen_rank": (
            sorted((f["img_s"] for f in fixed), reverse=True).index(at_chosen["img_s"]) + 1
            if at_chosen
            else None
        ),
    }


def spread_choices(result: dict[str, Any]) -> list[int]:
    """The batch cap each fresh start of the default target's calibration chose."""
    starts = result.get("spread", {}).get("starts", [])
    return [int(s["max_batch_size"]) for s in starts if s.get("max_batch_size")]


def _check(
    name: str, goal: str, measured: float | None, met: bool | None, detail: str
) -> dict[str, Any]:
    return {"name": name, "goal": goal, "measured": measured, "met": met, "detail": detail}


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, met or missed, each with the figures it was decided on."""
    out = []
    n = top_clients(result)
    ceiling = headline(result, "ceiling")
    best = best_kerasserve(result)
    goal = f"kerasserve's best runtime, small photos, {n} clients >= {CEILING_SHARE}x the front-end ceiling"
    if best and ceiling:
        share = best[1] / ceiling
        out.append(
            _check(
                "front-end ceiling",
                goal,
                share,
                share >= CEILING_SHARE,
                f"{best[0]} {best[1]:.1f} / ceiling {ceiling:.1f} img/s",
            )
        )
    else:
        missing = "the ceiling" if not ceiling else "no kerasserve target"
        out.append(_check("front-end ceiling", goal, None, None, f"not measured: {missing}"))

    steps = rises_with_clients(result, "keras")
    goal = "kerasserve --runtime keras: throughput never falls as clients rise"
    if steps:
        goal += " (" + ", ".join(f"{s['to']} >= {s['from']}" for s in steps) + ")"
        worst = min(s["to_img_s"] / s["from_img_s"] for s in steps)
        detail = "; ".join(
            f"{s['to']} vs {s['from']}: {s['to_img_s']:.1f} vs {s['from_img_s']:.1f} img/s"
            + ("" if s["holds"] else " **FALLS**")
            for s in steps
        )
        if steps[0]["passes"]:
            detail += f" (medians of {steps[0]['passes']} passes with the raw Keras limit, in turn)"
        else:
            detail += " (one point each)"
        out.append(
            _check("no fall with clients", goal, worst, all(s["holds"] for s in steps), detail)
        )
    else:
        out.append(_check("no fall with clients", goal, None, None, "not measured"))

    raw_keras = raw_limit(result, "raw-keras")
    keras_top = point(result, "keras", n)
    goal = f"kerasserve --runtime keras, {n} clients >= 0.8x the raw Keras limit"
    found = keras_against_raw(result)
    if found is None and raw_keras and keras_top:
        found = {"a": keras_top["img_s"], "b": raw_keras["best_img_s"], "passes": 0}
    if found and found["b"]:
        share = found["a"] / found["b"]
        detail = f"{found['a']:.1f} / {found['b']:.1f} img/s"
        if found["passes"]:
            detail += f" {_how(found)}"
        out.append(_check("batching vs raw Keras", goal, share, share >= 0.8, detail))
    else:
        out.append(_check("batching vs raw Keras", goal, None, None, "not measured"))

    flask_top = point(result, "flask", n)
    goal = f"kerasserve --runtime keras, {n} clients >= 4x the classic Flask app"
    if keras_top and flask_top and flask_top["img_s"] > 0:
        times = keras_top["img_s"] / flask_top["img_s"]
        detail = f"{keras_top['img_s']:.1f} / {flask_top['img_s']:.1f} img/s"
        out.append(_check("batching vs the classic Flask app", goal, times, times >= 4, detail))
    else:
        out.append(_check("batching vs the classic Flask app", goal, None, None, "not measured"))

    keras1 = point(result, "keras", 1)
    goal = "kerasserve --runtime keras, 1 client: p50 - raw Keras batch-1 latency <= 10 ms"
    if raw_keras and keras1 and keras1["p50_ms"] is not None:
        extra = keras1["p50_ms"] - raw_keras["batch1_latency_ms"]
        detail = f"p50 {keras1['p50_ms']:.1f} ms vs raw {raw_keras['batch1_latency_ms']:.1f} ms"
        out.append(_check("waiting costs nothing", goal, extra, extra <= 10, detail))
    else:
        out.append(_check("waiting costs nothing", goal, None, None, "not measured"))

    ov_top = point(result, "openvino", n)
    goal = f"kerasserve --runtime openvino, {n} clients >= 1.5x the raw Keras limit"
    if raw_keras and ov_top:
        share = ov_top["img_s"] / raw_keras["best_img_s"]
        detail = f"{ov_top['img_s']:.1f} / {raw_keras['best_img_s']:.1f} img/s"
        out.append(_check("past the framework", goal, share, share >= 1.5, detail))
    else:
        reason = result.get("targets", {}).get("openvino", {}).get("reason", "not measured")
        out.append(_check("past the framework", goal, None, None, reason))

    out.extend(issue_checks(result))
    return out


def issue_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every core, a lean front end, fair baselines: the near-free model against the ceiling,
    the default against the compiled plain FastAPI, the spread of fresh starts, the worker
    count `auto` picks, and the start-up batch choice."""
    out = []
    n = top_clients(result)
    found = compared(result, "nearfree", "ceiling", n)
    goal = f"the near-free model, {n} clients >= {NEARFREE_SHARE}x the front-end ceiling"
    if found and found["b"]:
        share = found["a"] / found["b"]
        detail = f"{found['a']:.1f} / {found['b']:.1f} img/s {_how(found)}"
        out.append(_check("near-free vs ceiling", goal, share, share >= NEARFREE_SHARE, detail))
    else:
        out.append(_check("near-free vs ceiling", goal, None, None, "not measured"))

    found = compared(result, "nearfree", "ceiling", 1, "p50_ms")
    goal = f"the near-free model, 1 client: p50 <= the ceiling's + {NEARFREE_P50_EXTRA_MS:g} ms"
    if found:
        extra = found["a"] - found["b"]
        detail = f"p50 {found['a']:.2f} vs {found['b']:.2f} ms {_how(found, ratio=False)}"
        met = extra <= NEARFREE_P50_EXTRA_MS
        out.append(_check("near-free latency", goal, extra, met, detail))
    else:
        out.append(_check("near-free latency", goal, None, None, "not measured"))

    default, plain = headline(result, "default"), headline(result, "fastapi")
    goal = f"kerasserve's default, {n} clients (median of its starts) > the compiled plain FastAPI"
    if default and plain:
        times = default / plain
        detail = f"{default:.1f} / {plain:.1f} img/s"
        out.append(_check("past the compiled baseline", goal, times, times > 1, detail))
    else:
        out.append(_check("past the compiled baseline", goal, None, None, "not measured"))

    stats = default_spread(result)
    goal = f"the default target's fresh starts, {n} clients: each within ±{SPREAD_PCT:g} % of their median"
    if stats is not None and stats["n"] >= 2:
        detail = (
            f"{stats['n']} starts: median {stats['median']:.1f} img/s "
            f"({stats['min']:.1f}-{stats['max']:.1f})"
        )
        met = stats["max_dev_pct"] <= SPREAD_PCT
        out.append(_check("fresh starts agree", goal, stats["max_dev_pct"], met, detail))
    else:
        out.append(_check("fresh starts agree", goal, None, None, "fewer than 2 starts"))

    found = compared(result, "default", "default-2w", n)
    goal = (
        f"`--workers auto` (1 worker below 4 cores) >= {WORKERS_SHARE}x 2 workers, "
        f"MobileNetV2 (default flags), {n} clients"
    )
    if found and found["b"]:
        share = found["a"] / found["b"]
        detail = f"1 worker {found['a']:.1f} vs 2 workers {found['b']:.1f} img/s {_how(found)}"
        free = compared(result, "nearfree", "nearfree-2w", n)
        if free and free["b"]:
            detail += (
                f"; the near-free model: 1 worker {free['a']:.1f} vs 2 workers "
                f"{free['b']:.1f} img/s ({free['a'] / free['b']:.2f}x)"
            )
        out.append(_check("workers auto", goal, share, share >= WORKERS_SHARE, detail))
    else:
        out.append(_check("workers auto", goal, None, None, "not measured"))

    choice = batch_choice(result)
    goal = (
        f"OpenVINO's start-up batch choice >= {BATCH_CHOICE_SHARE}x the best fixed cap, {n} clients"
    )
    if choice and choice["share_of_best"] is not None:
        share = choice["share_of_best"]
        detail = (
            f"chose {choice['chosen']}: {choice['calibrated_img_s']:.1f} img/s; best fixed "
            f"{choice['best_size']}: {choice['best_img_s']:.1f} img/s"
        )
        out.append(_check("batch choice", goal, share, share >= BATCH_CHOICE_SHARE, detail))
    else:
        out.append(_check("batch choice", goal, None, None, "not measured"))
    return out
