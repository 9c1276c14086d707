"""The IDX files KMNIST ships in: headers checked against sizes, splits validated once.

Every violation is a :class:`DatasetError` naming the file, raised at load, before any
trial (so it is never journalled as a failed learning rate).
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import torch


class DatasetError(RuntimeError):
    """The dataset is missing, unreadable or empty; the message says what to do."""


def idx_layout(head: bytes, file_size: int, name: str | os.PathLike) -> tuple[int, list[int]]:
    """Check an IDX header against the file's size: ``(header length, dims)``.

    Args:
        head: The file's first bytes (at least its header, if it has one).
        file_size: Size of the (uncompressed) file in bytes.
        name: The file, for the error message.

    Raises:
        DatasetError: The file is truncated or its header is not IDX.
    """
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
        raise DatasetError(f"{name} is not an IDX file of unsigned bytes (bad header)")
    ndim = head[3]
    header = 4 + 4 * ndim
    if len(head) < header or ndim == 0:
        raise DatasetError(f"{name} is truncated (incomplete header)")
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)
    if file_size != expected:
        raise DatasetError(
            f"{name} is corrupt or truncated: header says {dims} "
            f"({expected} bytes) but the file has {file_size} bytes"
        )
    return header, dims


def parse_idx(data: bytes, name: str | os.PathLike) -> torch.Tensor:
    """Decode an IDX file of unsigned bytes, raising a clear error if it is corrupt."""
    header, dims = idx_layout(data[:1028], len(data), name)
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(dims)


def check_idx(path: Path) -> list[int]:
    """Validate an uncompressed IDX file from its header and size; return its dimensions."""
    try:
        with open(path, "rb") as f:
            head = f.read(1028)  # 4 bytes + at most 255 dimensions of 4 bytes
    except OSError as err:
        raise DatasetError(f"{path} cannot be read: {err.strerror or err}") from err
    return idx_layout(head, path.stat().st_size, path)[1]


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file, gzipped or not (see :func:`parse_idx`)."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path} is corrupt: {err}") from err
    return parse_idx(data, path)


NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)


def validate_split(
    images: torch.Tensor,
    labels: torch.Tensor,
    files: tuple[str | os.PathLike, ...],
    counts: tuple[int, int] | None = None,
) -> None:
    """Check a decoded split once, at load: the shape, the counts, the labels.

    Every violation is a :class:`DatasetError` naming the file, raised before any trial
    (so it is never journalled as a failed learning rate).

    Args:
        images: Decoded images.
        labels: Decoded labels.
        files: ``(images file, labels file)``, for the messages.
        counts: ``(images, labels)`` from the headers, when ``images`` and ``labels``
            are empty stand-ins of the right shape (a header-only check: labels unread).

    Raises:
        DatasetError: Not ``(N, 28, 28)`` images, not ``(N,)`` labels in 0-9, or empty.
    """
    image_file, label_file = files
    if images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise DatasetError(
            f"{image_file}: expected 28x28 images (N, 28, 28), the header says "
            f"{tuple(images.shape)}"
        )
    if labels.dim() != 1:
        raise DatasetError(
            f"{label_file}: expected one label per image, shape {tuple(labels.shape)}"
        )
    n_images, n_labels = counts if counts is not None else (len(images), len(labels))
    if n_images != n_labels:
        raise DatasetError(
            f"{image_file} has {n_images} images but {label_file} has {n_labels} labels"
        )
    if n_images == 0:
        raise DatasetError(f"{image_file}: the split holds no images")
    if counts is not None:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= NUM_CLASSES:
        raise DatasetError(f"{label_file}: labels must be 0-{NUM_CLASSES - 1}, found {low}..{high}")
