"""Data preparation: read a dataset from its source, split off a validation set, write data/prepared/NAME.npz.

Sources (`params.data[NAME]`):
  download  torchvision's CIFAR10 / MNIST (torchvision checks the official md5s)
  local     the official files already on disk: cifar-10-python.tar.gz or its batches; MNIST's idx files (.gz or not)
  folder    your own images: train/<class>/* and test/<class>/* in a directory or a .tar(.gz), at its root or one
            directory down

The .npz holds uint8 images (N, C, H, W), int64 labels, the class names and a JSON `meta` string; it is written
uncompressed and atomically, and read back with `load_prepared` (no pickle involved).
Every bad input raises DataError naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import json
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from . import paths
from .errors import DataError
from .fileio import atomic_path
from .params import Params

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
PIL_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")  # the decoders PIL may use: no other plugin sees user bytes
KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
PROGRESS_MIN = 2000  # show a progress bar when decoding at least this many images


class Raw(NamedTuple):
    """A dataset as read from its source, before the validation split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    md5: dict[str, str]  # input file -> md5, where cheap to know
    skipped: int = 0  # bad images skipped (folder source, on_bad_image: skip)


# ---- prepare ------------------------------------------------------------------------------------------------
def prepare(params: Params, dataset: str) -> Path:
    """Read `dataset` from its source, split off `val_size` training images (fixed by params.seed), write the .npz."""
    ds = params.data[dataset]
    fmt = params.dataset_format(dataset)
    if ds.source == "download":
        root = Path(ds.path) if ds.path else paths.RAW / dataset
        raw = _download(fmt, root)
    else:
        root = Path(ds.path)
        if not root.exists():
            raise DataError(f"dataset '{dataset}': path {root} not found (params data.{dataset}.path)")
        if ds.source == "folder":
            from .image_folder import read_folder

            raw = read_folder(root, ds, params.channels(dataset))
        else:
            raw = _read_cifar_local(root, ds.md5) if fmt == "cifar10" else _read_mnist_local(root, ds.md5)

    n = len(raw.x_train)
    if ds.val_size >= n:
        raise DataError(f"dataset '{dataset}': val_size {ds.val_size} must be smaller than the {n} training images")
    perm = np.random.default_rng(params.seed).permutation(n)
    val, train = np.sort(perm[: ds.val_size]), np.sort(perm[ds.val_size :])
    arrays = {
        "x_train": raw.x_train[train], "y_train": raw.y_train[train],
        "x_val": raw.x_train[val], "y_val": raw.y_train[val],
        "x_test": raw.x_test, "y_test": raw.y_test,
    }
    _, c, h, w = raw.x_train.shape
    counts = {split: len(arrays[f"y_{split}"]) for split in ("train", "val", "test")}
    meta = {
        "dataset": dataset, "format": fmt, "source": ds.source, "path": str(root), "md5": raw.md5,
        "counts": counts, "channels": c, "image_size": [h, w], "num_classes": len(raw.classes),
        "skipped_bad_images": raw.skipped, "seed": params.seed, "val_size": ds.val_size,
    }
    out = paths.prepared(dataset)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays, classes=np.array(raw.classes, dtype=str), meta=np.array(json.dumps(meta)))
    skipped = f", skipped {raw.skipped} bad images" if raw.skipped else ""
    print(f"prepared {dataset}: {counts['train']} train / {counts['val']} val / {counts['test']} test, "
          f"{len(raw.classes)} classes, {c}x{h}x{w}{skipped} -> {out}")
    return out


# ---- load ---------------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    x_train: Optional[np.ndarray]  # uint8 (N, C, H, W); None where load_prepared(train=False) left it on disk
    y_train: Optional[np.ndarray]  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    meta: dict

    @property
    def channels(self) -> int:
        return int(self.x_test.shape[1])

    @property
    def image_size(self) -> int:
        """Image height (CIFAR-10 and MNIST images are square; folder images need not be: see x_test.shape)."""
        return int(self.x_test.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def spread(n: int, k: Optional[int]) -> np.ndarray:
    """Indices of k items evenly spread over n (all n when k is None or >= n). Quick mode evaluates on such a
    subset: the prepared arrays keep their source order (class by class for image folders), so their first k
    images could all be of one class."""
    if k is None or k >= n:
        return np.arange(n)
    return np.linspace(0, n, k, endpoint=False).astype(np.int64)


def load_prepared(dataset: str, root: Optional[str | Path] = None, train: bool = True) -> Prepared:
    """Read data/prepared/DATASET.npz (under the project `root`, default the current directory); train=False leaves
    the training split unread (x_train, y_train None): evaluate and export need only the test and validation
    images, and CIFAR-10's training split is 138 MB of the file's 184."""
    path = Path(root or ".") / paths.prepared(dataset)
    if not path.exists():
        raise DataError(f"{path} not found: run `netpipe prepare {dataset}` (or `dvc repro`) first")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: (z[k] if train or not k.endswith("_train") else None) for k in KEYS}
            classes = [str(c) for c in z["classes"]]
            meta = json.loads(str(z["meta"]))
    except KeyError as exc:
        raise DataError(f"{path} lacks {exc}: re-run `netpipe prepare {dataset}`") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt or unreadable ({exc}): re-run `netpipe prepare {dataset}`") from None
    return Prepared(**arrays, classes=classes, meta=meta)


# ---- helpers ------------------------------------------------------------------------------------------------
def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_md5(path: Path, expected: Optional[str]) -> dict[str, str]:
    """md5 of an archive file, checked against `expected` when set."""
    if path.is_dir():
        if expected:
            raise DataError(f"md5 is set but {path} is a directory; md5 checks an archive file "
                            "(remove md5 or point path at the archive)")
        return {}
    actual = md5_file(path)
    if expected and actual != expected.lower():
        raise DataError(f"{path}: md5 mismatch: expected {expected}, got {actual} (incomplete or different file?)")
    return {path.name: actual}


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except _ARCHIVE_ERRORS as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc})") from None


# ---- download -----------------------------------------------------------------------------------------------
def _download(fmt: str, root: Path) -> Raw:
    from torchvision import datasets

    cls = datasets.CIFAR10 if fmt == "cifar10" else datasets.MNIST
    try:
        train, test = (cls(root=str(root), train=t, download=True) for t in (True, False))
    except Exception as exc:  # URLError, RuntimeError (md5 mismatch; MNIST: "Error downloading ..." over lines), OSError
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = (lines[-1] if lines else type(exc).__name__)[:200]  # the last cause, not every mirror tried
        raise DataError(
            f"cannot download {fmt} into {root} ({why}); offline? set data.{fmt}: source: local, path: <the official "
            f"files> (README, Data)"
        ) from None
    if fmt == "cifar10":
        x = [np.ascontiguousarray(d.data.transpose(0, 3, 1, 2)) for d in (train, test)]
        classes, md5 = list(train.classes), {cls.filename: cls.tgz_md5}
    else:
        x = [d.data.numpy()[:, None] for d in (train, test)]
        classes, md5 = [str(i) for i in range(10)], dict(cls.resources)
    y = [np.asarray(d.targets, dtype=np.int64) for d in (train, test)]
    return Raw(x[0], y[0], x[1], y[1], classes, md5)  # md5s: the official ones torchvision verified


# ---- CIFAR-10, official python batches ----------------------------------------------------------------------
class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10's batches hold: dicts, lists, bytes, ints and numpy uint8 arrays.

    A pickle can call any importable function; this one resolves nothing but numpy's array reconstruction."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # ndarray.__reduce__ (the official files, numpy 1.x)
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # ndarray.__reduce_ex__ at protocol 5
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def __init__(self, data: bytes, name: str):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.name = name

    def find_class(self, module: str, name: str):
        canonical = module.replace("numpy._core", "numpy.core")
        if (canonical, name) not in self.ALLOWED:
            raise DataError(f"{self.name}: refusing to unpickle {module}.{name} "
                            "(not a CIFAR-10 batch; possibly malicious)")
        try:  # numpy >= 2 keeps these under numpy._core; numpy.core is a deprecated alias
            mod = importlib.import_module(canonical.replace("numpy.core", "numpy._core"))
        except ImportError:
            mod = importlib.import_module(canonical)
        return getattr(mod, name)


def _unpickle(data: bytes, name: str):
    try:
        return _RestrictedUnpickler(data, name).load()
    except DataError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ... from a corrupt file
        raise DataError(f"{name}: cannot unpickle ({type(exc).__name__}: {exc})") from None


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_FILES = CIFAR_TRAIN + ["test_batch", "batches.meta"]


def _read_cifar_local(path: Path, md5: Optional[str]) -> Raw:
    md5s = _check_md5(path, md5)
    blobs: dict[str, tuple[str, bytes]] = {}  # file -> (display name, bytes)
    if path.is_dir():
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        for f in CIFAR_FILES:
            if not (folder / f).is_file():
                raise DataError(f"{folder / f} not found (expected CIFAR-10's batches: {', '.join(CIFAR_FILES)})")
            blobs[f] = (str(folder / f), (folder / f).read_bytes())
            md5s[f] = hashlib.md5(blobs[f][1]).hexdigest()
    else:
        with _open_tar(path) as tf:
            try:
                for m in tf:
                    base = m.name.rsplit("/", 1)[-1]
                    if m.isfile() and base in CIFAR_FILES and base not in blobs:
                        blobs[base] = (f"{path}:{m.name}", tf.extractfile(m).read())
            except _ARCHIVE_ERRORS as exc:
                raise DataError(f"{path}: truncated or corrupt archive ({type(exc).__name__}: {exc})") from None
        missing = [f for f in CIFAR_FILES if f not in blobs]
        if missing:
            raise DataError(f"{path}: archive lacks {', '.join(missing)} (not cifar-10-python.tar.gz?)")

    name, data = blobs["batches.meta"]
    meta = _unpickle(data, name)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{name}: expected a dict with b'label_names' (a list of class names)")
    classes = [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    parts = [_cifar_batch(*blobs[f], len(classes)) for f in CIFAR_TRAIN]
    x_test, y_test = _cifar_batch(*blobs["test_batch"], len(classes))
    x_train, y_train = (np.concatenate(a) for a in zip(*parts))
    return Raw(x_train, y_train, x_test, y_test, classes, md5s)


def _cifar_batch(name: str, data: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(data, name)
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DataError(f"{name}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels')")
    x, y = d[b"data"], np.asarray(d[b"labels"])
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{name}: b'data' must be a uint8 array of shape (N, 3072), got {got}")
    if y.shape != (len(x),) or (len(y) and y.dtype.kind not in "iu"):
        raise DataError(f"{name}: b'labels' must be {len(x)} integers, got {y.dtype} {y.shape}")
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise DataError(f"{name}: label {bad[0]} out of range 0..{num_classes - 1}")
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


# ---- MNIST, official idx files ------------------------------------------------------------------------------
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An idx file (uint8 payload): magic number, big-endian uint32 dimensions, then the data."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc}; truncated or corrupt gzip?)") from None
    ndim = magic & 0xFF
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        got = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise DataError(f"{path}: not an idx file (magic number {got}, expected {magic})")
    header = 4 + 4 * ndim
    dims = tuple(np.frombuffer(raw[4:header], dtype=">u4").astype(int)) if len(raw) >= header else ()
    expected = header + int(np.prod(dims)) if dims else None
    if expected is None or len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes, but its header {dims} needs {expected} (truncated file?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_mnist_local(folder: Path, md5: Optional[str]) -> Raw:
    md5s = _check_md5(folder, md5)
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a directory holding MNIST's four idx files (optionally .gz)")
    out = []
    for split, (images_name, labels_name) in MNIST_FILES.items():
        files = []
        for name in (images_name, labels_name):
            found = [folder / n for n in (name, name + ".gz") if (folder / n).is_file()]
            if not found:
                raise DataError(f"{folder / name}(.gz) not found (MNIST's {split} files)")
            files.append(found[0])
            md5s[found[0].name] = md5_file(found[0])
        x, y = _read_idx(files[0], 2051), _read_idx(files[1], 2049)
        if x.shape[1:] != (28, 28):
            raise DataError(f"{files[0]}: images are {x.shape[1]}x{x.shape[2]}, MNIST's are 28x28")
        if len(x) != len(y):
            raise DataError(f"{files[0]} holds {len(x)} images but {files[1]} holds {len(y)} labels")
        if len(y) and y.max() > 9:
            raise DataError(f"{files[1]}: label {y.max()} out of range 0..9")
        out += [x[:, None], y.astype(np.int64)]
    return Raw(*out, [str(i) for i in range(10)], md5s)
