"""The benchmark's figure: throughput and p99 latency against clients, one line per target;
the targets' labels, which the report's tables share (the report imports this, never back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import analysis

RAW_COLOURS = {
    "raw-keras": "grey",
    "raw-openvino": "tab:purple",
    "raw-int8": "tab:pink",
    "raw-resnet50-keras": "darkgrey",
    "raw-resnet50-openvino": "mediumpurple",
    "raw-resnet50-int8": "hotpink",
}
RAW_LABELS = {
    "raw-keras": "raw Keras: tf.function(model(x, training=False))",
    "raw-openvino": "raw OpenVINO FP32 (THROUGHPUT, 2 requests/stream)",
    "raw-int8": "raw OpenVINO INT8 (THROUGHPUT, 2 requests/stream)",
}
RAW_LABELS.update(
    {name.replace("raw-", "raw-resnet50-"): text for name, text in RAW_LABELS.items()}
)


def label(result: dict[str, Any], target: str) -> str:
    entry = result.get("targets", {}).get(target, {})
    return str(entry.get("label") or RAW_LABELS.get(target) or target)


def legend(result: dict[str, Any], target: str) -> str:
    """`label`, with the network in front when it is not MobileNetV2 (one figure holds both)."""
    model = analysis.model_of(result, target)
    text = label(result, target)
    return f"{model}: {text}" if model == analysis.RESNET50 else text


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (tput, p99) = plt.subplots(1, 2, figsize=(12, 4.6))
    points = result.get("points", [])
    for target in dict.fromkeys(p["target"] for p in points):
        pts = sorted((p for p in points if p["target"] == target), key=lambda p: p["concurrency"])
        xs = [p["concurrency"] for p in pts]
        style = {"ls": ":", "color": "black"} if target == "ceiling" else {}
        line = tput.plot(
            xs, [p["img_s"] for p in pts], marker="o", label=legend(result, target), **style
        )
        p99.plot(xs, [p["p99_ms"] or float("nan") for p in pts], marker="o", **style)
        if target == "default" and (stats := analysis.default_spread(result)):
            tput.errorbar(
                [analysis.top_clients(result)],
                [stats["median"]],
                yerr=[[stats["median"] - stats["min"]], [stats["max"] - stats["median"]]],
                fmt="none",
                capsize=4,
                color=line[0].get_color(),
            )
    for name in result.get("raw", {}):
        limit = analysis.raw_limit(result, name)
        if limit:
            tput.axhline(
                limit["best_img_s"],
                ls="--",
                lw=1,
                color=RAW_COLOURS.get(name, "grey"),
                label=f"{legend(result, name)} (batch {limit['best_batch']})",
            )
    levels = sorted({p["concurrency"] for p in points}) or [1]
    for ax, title in ((tput, "throughput (img/s)"), (p99, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent clients (small photos)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    if any(p["p99_ms"] for p in points):
        p99.set_yscale("log")
    tput.set_ylim(bottom=0)
    tput.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.15), ncol=2)
    models = sorted(
        {analysis.model_of(result, p["target"]) for p in points}
        & {analysis.MODEL, analysis.RESNET50}
    ) or [analysis.MODEL]
    fig.suptitle(f"kerasserve benchmark, {' and '.join(models)}, {result['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
