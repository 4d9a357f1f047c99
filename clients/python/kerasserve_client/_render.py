"""Plain-text views of answers for the client commands: prediction tables, vectors, model lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kerasserve.schemas import FeaturesResponse, ImageResult, ModelInfo, ModelList, ModelRef
from kerasserve_client._bulk import ImageOutcome

MULTI_LABEL_NOTE = (
    "multi-label model: each likelihood is its own yes/no answer; they do not add up to 100%"
)


def model_line(model: ModelRef) -> str:
    """`model MobileNetV2 v2 (runtime keras, weights random, labels en)`."""
    version = f" v{model.version}" if model.version is not None else ""
    labels = f", labels {model.labels_language}" if model.labels_language else ""
    return (
        f"model {model.name}{version} (runtime {model.runtime.name}, "
        f"weights {model.weights.kind.value}{labels})"
    )


def predict_tables(outcomes: Sequence[ImageOutcome]) -> str:
    """A table per answered image, under a line naming the model that answered (again where
    another version took over mid-run); outcomes without a result are left out."""
    lines: list[str] = []
    shown: set[str] = set()
    for outcome in outcomes:
        result, model = outcome.result, outcome.model
        if result is None or model is None:
            continue
        head = model_line(model)
        if head not in shown:
            shown.add(head)
            lines.append(head)
            if model.weights.warning:
                lines.append(f"warning: {model.weights.warning}")
            if model.output_kind == "multi_label":
                lines.append(MULTI_LABEL_NOTE)
        lines += ["", *image_table(result, model, outcome.index)]
    return "\n".join(lines)


def image_table(result: ImageResult, model: ModelRef, index: int) -> list[str]:
    multi_label = model.output_kind == "multi_label"
    column = "likelihood" if multi_label else "probability"
    t = result.timing
    width = max((len(p.label) for p in result.predictions), default=5)
    lines = [
        result.filename or f"image {index}",
        f"  {'#':>2}  {'label':<{width}}  {'class':<10}  {column:>11}",
    ]
    for rank, p in enumerate(result.predictions, 1):
        answer = f"{'yes' if p.probability >= 0.5 else 'no':>3} {p.probability:>7.2%}"
        value = answer if multi_label else f"{p.probability:.2%}"
        lines.append(f"  {rank:>2}  {p.label:<{width}}  {p.class_id:<10}  {value:>11}")
    decode = f", decode {t.decode_ms:.1f} ms" if t.decode_ms is not None else ""
    lines.append(
        f"  (batch of {t.batch_size}, queue {t.queue_ms:.1f} ms, "
        f"inference {t.inference_ms:.1f} ms{decode})"
    )
    return lines


def features_text(answer: FeaturesResponse, show: int) -> str:
    lines = []
    for i, result in enumerate(answer.results):
        name = result.filename or f"image {i}"
        head = f"{name}: {answer.model} layer {answer.layer}, pooling {answer.pooling}"
        lines.append(f"{head}, shape {tuple(answer.shape)}")
        vector = result.vector or []
        values = ", ".join(f"{v:.4g}" for v in vector[:show])
        more = ", ..." if len(vector) > show else ""
        norm = math.sqrt(sum(v * v for v in vector))
        lines.append(f"  [{values}{more}]  L2 norm {norm:.4g}")
    return "\n".join(lines)


MODEL_COLUMNS = ("model", "version", "state", "output", "runtime", "weights", "input", "labels")


def models_table(models: ModelList, url: str) -> str:
    """One row per served model (`*` marks the default), and why any failed model failed."""
    rows = [_model_row(m, m.name == models.default_model or m.default) for m in models.models]
    widths = [max(len(row[i]) for row in [MODEL_COLUMNS, *rows]) for i in range(len(MODEL_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [MODEL_COLUMNS, *rows]
    ]
    lines += [f"{m.name}: {m.error}" for m in models.models if m.error]
    count = len(models.models)
    lines.append(f"\n{count} model{'s' if count != 1 else ''} at {url}")
    return "\n".join(lines)


def _model_row(model: ModelInfo, default: bool) -> tuple[str, ...]:
    shape = model.input_shape
    return (
        model.name + (" *" if default else ""),
        "-" if model.version is None else str(model.version),
        model.state.value,
        model.output_kind or "-",
        model.runtime.name if model.runtime else "-",
        model.weights.kind.value if model.weights else "-",
        f"{shape[0]}x{shape[1]}" if shape else "-",
        ",".join(model.labels_languages) or "-",
    )
