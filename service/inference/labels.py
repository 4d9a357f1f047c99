"""Class labels: the ImageNet index shipped with the package, or a user's labels file."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kerasserve.service.errors import ModelLoadError


@dataclass(frozen=True)
class Labels:
    """`class_ids[i]` and `names[i]` describe output `i` of the model."""

    class_ids: tuple[str, ...]
    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.names)


@functools.cache
def imagenet() -> Labels:
    """The 1000 ImageNet classes as Keras' `decode_predictions` names them; never downloads."""
    text = resources.files("kerasserve.service.inference").joinpath(
        "data/imagenet_class_index.json"
    )
    index: dict[str, list[str]] = json.loads(text.read_text(encoding="utf-8"))
    ordered = [index[str(i)] for i in range(len(index))]
    return Labels(
        class_ids=tuple(wnid for wnid, _ in ordered),
        names=tuple(name for _, name in ordered),
        source="imagenet",
    )


IMAGENET_TRANSLATIONS = {"zh-CN": "data/imagenet_labels_zh-CN.txt"}


@functools.cache
def imagenet_languages() -> dict[str, Labels]:
    """ImageNet labels in every language shipped with the package, English first."""
    english = imagenet()
    found = {"en": english}
    for language, name in IMAGENET_TRANSLATIONS.items():
        path = resources.files("kerasserve.service.inference").joinpath(name)
        if not path.is_file():
            continue
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n]
        if len(names) == len(english):
            found[language] = Labels(english.class_ids, tuple(names), f"imagenet-{language}")
    return found


def pick_language(wanted: str | None, available: list[str]) -> str | None:
    """The best of `available` for `wanted`: a language tag (`zh-CN`, `zh`) or a whole
    `Accept-Language` header (`zh-CN,zh;q=0.9,en;q=0.8`). None when nothing matches."""
    if not wanted:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(wanted.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    lowered = {lang.lower(): lang for lang in available}
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return None
        if tag in lowered:
            return lowered[tag]
        primary = tag.split("-")[0]
        for lang in available:
            if lang.lower().split("-")[0] == primary:
                return lang
    return None


def load_labels(path: str | Path) -> Labels:
    """Read a labels file: one label per line (`.txt`), or a JSON list or Keras-style index.

    A text line may be `label` or `class_id<TAB>label`. Blank lines are skipped.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ModelLoadError(f"cannot read labels file {str(path)!r}: {exc}") from exc
    ids: list[str] = []
    names: list[str] = []
    if path.suffix.lower() == ".json":
        data = json.loads(raw)
        if isinstance(data, list):
            names = [str(x) for x in data]
            ids = [str(i) for i in range(len(names))]
        elif isinstance(data, dict):
            for i in range(len(data)):
                entry = data.get(str(i))
                if entry is None:
                    raise ModelLoadError(f"{path}: JSON index has no key {str(i)!r}")
                if isinstance(entry, list) and len(entry) == 2:
                    ids.append(str(entry[0]))
                    names.append(str(entry[1]))
                else:
                    ids.append(str(i))
                    names.append(str(entry))
        else:
            raise ModelLoadError(f"{path}: expected a JSON list or object of labels")
    else:
        for line in raw.splitlines():
            line = line.strip()
            if not line:
                continue
            if "\t" in line:
                class_id, name = line.split("\t", 1)
            else:
                class_id, name = str(len(names)), line
            ids.append(class_id.strip())
            names.append(name.strip())
    if not names:
        raise ModelLoadError(f"labels file {str(path)!r} holds no labels")
    return Labels(tuple(ids), tuple(names), source=str(path))


def generic(count: int) -> Labels:
    """Labels for a model with no labels file: `class_0`, `class_1`, ..."""
    return Labels(
        tuple(str(i) for i in range(count)), tuple(f"class_{i}" for i in range(count)), "none"
    )
