"""The benchmark's figure: throughput and p99 latency against concurrency, one line per target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import ideal_img_s, raw_limit


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [
        v for v in ("small", "phone") if any(p["variant"] == v for p in result.get("points", []))
    ]
    fig, axes = plt.subplots(
        len(variants) or 1, 2, figsize=(11, 3.8 * max(1, len(variants))), squeeze=False
    )
    targets = list(dict.fromkeys(p["target"] for p in result.get("points", [])))
    keras = raw_limit(result, "keras")
    cores = int(result.get("machine", {}).get("cores") or 2)
    for row, variant in enumerate(variants):
        tput, p99 = axes[row]
        for target in targets:
            pts = sorted(
                (p for p in result["points"] if p["target"] == target and p["variant"] == variant),
                key=lambda p: p["concurrency"],
            )
            if not pts:
                continue
            xs = [p["concurrency"] for p in pts]
            tput.plot(xs, [p["img_s"] for p in pts], marker="o", label=target)
            p99.plot(xs, [p["p99_ms"] or float("nan") for p in pts], marker="o", label=target)
        for rt in result.get("raw", {}):
            limit = raw_limit(result, rt)
            if limit and variant == "small":
                tput.axhline(
                    limit["best_img_s"],
                    ls="--",
                    lw=1,
                    color="grey" if rt == "keras" else "tab:purple",
                    label=f"raw {rt} limit",
                )
        if keras and variant == "phone" and "decode_ms" in keras:
            ideal = ideal_img_s(keras["decode_ms"]["phone"], keras["infer_ms_per_img"], cores)
            tput.axhline(
                ideal, ls="--", lw=1, color="grey", label="decode + inference ideal (keras)"
            )
        for ax, title in ((tput, "throughput (img/s)"), (p99, "p99 latency (ms)")):
            ax.set_xscale("log", base=2)
            levels = sorted({p["concurrency"] for p in result["points"] if p["variant"] == variant})
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.minorticks_off()
            ax.set_xlabel("concurrent clients")
            ax.set_title(f"{variant} photos: {title}")
            ax.grid(True, alpha=0.3)
        p99.set_yscale("log")
        tput.set_ylim(bottom=0)
        tput.legend(fontsize=8)
    fig.suptitle(f"kerasserve benchmark, MobileNetV2, {result['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
