"""The `kerasserve train` subcommand: its flags, and exit codes from the training errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_train_command(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a catalogue model on DATA_DIR/<label>/*.jpg and publish it into a "
        "model repository",
        description="Fine-tune a keras.applications model on your photos (one folder per "
        "class) and write the next version of NAME into REPO, with metrics.json and "
        "confusion.png. A server polling REPO serves it. Exit codes: 0 published, 2 bad data "
        "or options, 3 the version could not be written, 1 anything else.",
    )
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="DATA_DIR/<label>/*.jpg|png")
    p.add_argument("--base", default="MobileNetV2", help="catalogue model (default MobileNetV2)")
    p.add_argument("--repository", type=Path, required=True, metavar="REPO")
    p.add_argument("--name", required=True, help="the model's name in the repository")
    p.add_argument("--epochs", type=int, default=10, help="most epochs per stage (default 10)")
    p.add_argument(
        "--fine-tune-layers",
        type=int,
        default=0,
        help="stage 2: unfreeze the base's top N layers (BatchNorm stays frozen); default 0",
    )
    p.add_argument(
        "--weights",
        default="auto",
        help="auto (ImageNet if in Keras' cache) | imagenet | none | PATH to the base's "
        "weights without its top",
    )
    p.add_argument("--validation-split", type=float, default=0.2, help="held out (default 0.2)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no flip/rotate/zoom")
    p.add_argument("--image-size", type=int, help="input side in pixels (default: the base's)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="stage 1, Adam")
    p.add_argument("--fine-tune-learning-rate", type=float, default=1e-4, help="stage 2, SGD")
    p.add_argument("--patience", type=int, default=3, help="early stopping patience, epochs")
    p.add_argument(
        "--random-base",
        choices=["bn-statistics", "unit-norm"],
        default="unit-norm",
        help="without pretrained weights: keep the base's statistics and feed the head "
        "unit-length features (default; measured 1.0 held-out on 4 classes), or set its "
        "BatchNorm statistics from the photos (0.42-0.53; see docs/own-classes.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kerasserve.service.training.errors import TrainingError
    from kerasserve.service.training.train import TrainOptions, train

    options = TrainOptions(
        data_dir=args.data_dir,
        repository=args.repository,
        name=args.name,
        base=args.base,
        epochs=args.epochs,
        fine_tune_layers=args.fine_tune_layers,
        weights=args.weights,
        validation_split=args.validation_split,
        seed=args.seed,
        augment=args.augment,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        patience=args.patience,
        random_base=args.random_base,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    try:
        train(options)
    except TrainingError as exc:
        sys.stderr.write(f"kerasserve train: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("kerasserve train: interrupted; nothing was published\n")
        return 130
    return 0
