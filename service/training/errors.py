"""Why a training run stopped; each error carries the exit code `kerasserve train` returns.

TrainingError          exit 1
 ├── InvalidDataset    exit 2  no folder, no photos, one class, a class with < 2 photos
 ├── InvalidOption     exit 2  a bad model name, base, weights or size
 └── PublishFailed     exit 3  the version could not be written (a full disk, permissions)
"""

from __future__ import annotations


class TrainingError(Exception):
    exit_code = 1


class InvalidDataset(TrainingError):
    exit_code = 2


class InvalidOption(TrainingError):
    exit_code = 2


class PublishFailed(TrainingError):
    exit_code = 3
