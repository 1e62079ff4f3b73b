"""Tiny data sets in the real on-disk formats, for tests (no pytest dependency, no network).

Every image is learnable: each class has its own colour (or grey level) and a bright square at its own position,
plus noise, so a tiny CNN trained for a few steps beats chance.
"""

from __future__ import annotations

import colorsys
import gzip
import pickle
import struct
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_images(labels: np.ndarray, num_classes: int, size: int, channels: int,
                 rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, C, size, size): class k = background colour k + a bright square in cell k of a grid, plus noise."""
    grid = int(np.ceil(np.sqrt(num_classes)))
    cell = size // grid
    x = np.empty((len(labels), channels, size, size), dtype=np.float32)
    for k in range(num_classes):
        idx = labels == k
        rgb = np.array(colorsys.hsv_to_rgb(k / num_classes, 0.8, 0.7)) * 255
        bg = rgb if channels == 3 else [40 + 160 * k / max(num_classes - 1, 1)]
        x[idx] = np.asarray(bg, dtype=np.float32)[:, None, None]
        r, c = divmod(k, grid)
        x[idx, :, r * cell : r * cell + cell, c * cell : c * cell + cell] = 255 - x[idx, :, :1, :1] / 2
    x += rng.normal(0, 12, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def _labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Every class at least once when n allows, the rest random."""
    y = np.concatenate([np.arange(min(n, num_classes)), rng.integers(0, num_classes, max(n - num_classes, 0))])
    return rng.permutation(y).astype(np.int64)


# ---- CIFAR-10 python batches --------------------------------------------------------------------------------
class _Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle did for the official CIFAR-10 files: protocol 2, every str/bytes as
    a byte string (SHORT_BINSTRING/BINSTRING), numpy's functions under numpy.core."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, fh):
        super().__init__(fh, protocol=2)

    def save_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_string
    dispatch[bytes] = save_string

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)


def write_cifar_pickle(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        _Py2Pickler(fh).dump(obj)


def make_cifar_batches(root: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    """Write ROOT/cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) and return that folder.
    n_train images are spread over the five training batches."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [len(a) for a in np.array_split(np.arange(n_train), 5)]
    for name, n in [(f"data_batch_{i + 1}", s) for i, s in enumerate(sizes)] + [("test_batch", n_test)]:
        y = _labels(n, 10, rng)
        x = class_images(y, 10, 32, 3, rng)
        write_cifar_pickle(folder / name, {
            b"batch_label": f"{name.replace('_', ' ')} of 5".encode(),
            b"labels": [int(v) for v in y],
            b"data": x.reshape(n, 3072),
            b"filenames": [f"{CIFAR_CLASSES[v]}_s_{i:06d}.png".encode() for i, v in enumerate(y)],
        })
    write_cifar_pickle(folder / "batches.meta", {
        b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072,
    })
    return folder


def make_cifar_tarball(path: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    """Write PATH (e.g. .../cifar-10-python.tar.gz) holding cifar-10-batches-py/ as the official archive does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_cifar_batches(Path(tmp), n_train, n_test, seed)
        with tarfile.open(path, "w:gz") as tf:
            tf.add(folder, arcname="cifar-10-batches-py")
    return path


# ---- MNIST idx ----------------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """An idx file of uint8 data: magic 0x0000080N (N = ndim), big-endian dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(str(path) + ".gz") if gz else Path(path)
    path.write_bytes(gzip.compress(blob, mtime=0) if gz else blob)
    return path


def make_mnist_idx(root: Path, n_train: int = 100, n_test: int = 50, gz: bool = True, seed: int = 0) -> Path:
    """Write MNIST's four idx files (train-images-idx3-ubyte[.gz], ...) into ROOT and return ROOT."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = _labels(n, 10, rng)
        write_idx(root / f"{prefix}-images-idx3-ubyte", class_images(y, 10, 28, 1, rng)[:, 0], gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y, gz)
    return root


# ---- image folders ------------------------------------------------------------------------------------------
def make_image_folder(root: Path, classes: Sequence[str] = ("cat", "dog", "frog"), n_train: int = 8, n_test: int = 4,
                      size: int = 32, mode: str = "RGB", ext: str = "png", tar: bool = False,
                      nested: Optional[str] = None, seed: int = 0) -> Path:
    """Write [NESTED/]train/<class>/NNNN.EXT and [NESTED/]test/<class>/... (n_train / n_test images per class).

    Returns the path to use as the dataset's `path`: ROOT itself, or with tar=True ROOT/images.tar.gz (the
    folders are written to a temporary directory and archived)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) if tar else root
        base = top / nested if nested else top
        for split, n in (("train", n_train), ("test", n_test)):
            for k, cls in enumerate(classes):
                folder = base / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                x = class_images(np.full(n, k), len(classes), size, 1 if mode == "L" else 3, rng)
                for i, img in enumerate(x):
                    arr = img[0] if mode == "L" else img.transpose(1, 2, 0)
                    Image.fromarray(arr).save(folder / f"{i:04d}.{ext}")
        if not tar:
            return root
        out = root / "images.tar.gz"
        with tarfile.open(out, "w:gz") as tf:
            for child in sorted(top.iterdir()):
                tf.add(child, arcname=child.name)
        return out


def params_for(dataset: str, seed: int = 0, **fields):
    """A minimal validated Params with one dataset (no variants, no nets), e.g.
    params_for("mine", source="folder", path=str(folder), val_size=4)."""
    from pipeline.params import parse

    return parse({"seed": seed, "data": {dataset: fields}, "variants": {}, "nets": {}}, source="test params")
