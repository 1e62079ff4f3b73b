"""Image-folder datasets (data.<name>.source: folder): train/<class>/* and test/<class>/* in a folder or a
.tar/.tar.gz, decoded into one uint8 array. RGB JPEGs go through torchvision's libjpeg-turbo decoder in chunks,
every other image (and every JPEG it leaves) through PIL, which names what is wrong with a bad one."""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from .data import _ARCHIVE_ERRORS, IMAGE_EXTS, PIL_FORMATS, PROGRESS_MIN, Raw, _check_md5, _open_tar
from .errors import DataError
from .params import DatasetParams


class _Item(NamedTuple):
    split: str
    cls: str
    name: str  # for messages: the file, or archive:member
    read: Callable[[], bytes]
    order: int  # decoding order: a tar member's offset (sequential reads), 0 for files (train first, by name)


def read_folder(path: Path, ds: DatasetParams, channels: int) -> Raw:
    md5s = _check_md5(path, ds.md5)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*"))
        entries = {p.relative_to(path).as_posix(): (p.is_dir(), str(p), p.read_bytes, 0) for p in files}
        return _decode_folder(path, entries, ds.on_bad_image, channels, md5s)
    with _open_tar(path) as tf:
        try:
            members = tf.getmembers()
        except _ARCHIVE_ERRORS as exc:
            raise DataError(f"{path}: truncated or corrupt archive ({type(exc).__name__}: {exc})") from None
        entries = {m.name.removeprefix("./").rstrip("/"): (m.isdir(), f"{path}:{m.name}",
                   (lambda m=m: tf.extractfile(m).read()), m.offset) for m in members if m.isdir() or m.isfile()}
        return _decode_folder(path, entries, ds.on_bad_image, channels, md5s)


def _decode_folder(path: Path, entries: dict, on_bad: str, channels: int, md5s: dict) -> Raw:
    """entries: relative posix path -> (is_dir, display name, read(), order). Finds train/ and test/ at the root
    or one directory down, then decodes every image (classes sorted by name, files by path)."""
    entries = {k: v for k, v in entries.items()
               if k and not any(p.startswith(".") or p == "__MACOSX" for p in k.split("/"))}
    tops = {k.split("/")[0] for k in entries}
    bases = [""] if "train" in tops else sorted({k.split("/")[0] + "/" for k in entries
                                                  if k.split("/")[1:2] == ["train"]})
    if len(bases) != 1:
        where = f"one level down it is in several: {', '.join(bases)}" if bases else "none found"
        raise DataError(f"{path}: expected train/<class>/* and test/<class>/* at its root or one level down ({where})")
    base = bases[0]
    found: dict[str, dict[str, list]] = {"train": {}, "test": {}}
    for rel, (is_dir, name, read, order) in sorted(entries.items()):
        parts = rel[len(base):].split("/") if rel.startswith(base) else []
        if len(parts) < 2 or parts[0] not in found:
            continue
        if is_dir or len(parts) > 2:  # a class folder, or a file inside one (files directly in train/ are ignored)
            files = found[parts[0]].setdefault(parts[1], [])
            if not is_dir and Path(parts[-1]).suffix.lower() in IMAGE_EXTS:
                files.append(_Item(parts[0], parts[1], name, read, order))
    if not found["train"]:
        raise DataError(f"{path}: no class folders in {base}train/")
    if not found["test"]:
        raise DataError(f"{path}: no class folders in {base}test/ (it must hold the same classes as train/)")
    classes = sorted(found["train"])
    if set(found["test"]) != set(classes):
        only_train, only_test = set(classes) - set(found["test"]), set(found["test"]) - set(classes)
        raise DataError(f"{path}: train/ and test/ must hold the same class folders "
                        f"(only in train: {sorted(only_train) or '-'}; only in test: {sorted(only_test) or '-'})")
    for split, folders in found.items():
        for cls, files in folders.items():
            if not files:
                sep = "/" if path.is_dir() else ":"
                raise DataError(f"{path}{sep}{base}{split}/{cls}: empty class folder "
                                f"(no {', '.join(sorted(IMAGE_EXTS))} images)")
    items = [it for split in ("train", "test") for cls in classes for it in found[split][cls]]
    x, keep = _decode_images(items, channels, on_bad)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[it.cls] for it in items], dtype=np.int64)
    is_train = np.array([it.split == "train" for it in items])
    tr, te = keep & is_train, keep & ~is_train
    if not tr.any() or not te.any():
        raise DataError(f"{path}: no readable {'train' if not tr.any() else 'test'} images")
    return Raw(x[tr], labels[tr], x[te], labels[te], classes, md5s, skipped=int((~keep).sum()))


JPEG_CHUNK = 2048  # images read, then decoded in one torchvision call


def _rgb_jpegs(blobs: list[bytes], max_pixels: Optional[int]) -> list[Optional[np.ndarray]]:
    """Each JPEG among `blobs` as (3, H, W) uint8 RGB through torchvision's libjpeg-turbo decoder, in one call;
    None where PIL is to decode it (not a JPEG, not 1 or 3 components, unreadable, or over PIL's decompression-bomb
    limit: PIL then says why). Bitwise PIL's own pixels (checked on all 60,000 CIFAR-10 JPEGs) at a fraction of the
    time: PIL parses each header in Python."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[Optional[np.ndarray]] = [None] * len(blobs)
    # the header's size first, as PIL's open checks it: a small file declaring a huge image is never decoded here
    idx = [i for i, b in enumerate(blobs) if b.startswith(b"\xff\xd8\xff") and (hw := _jpeg_size(b))
           and not (max_pixels and hw[0] * hw[1] > max_pixels)]
    if not idx:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bytes are not writable: torch warns, decode_jpeg only reads them
        tensors = [torch.frombuffer(blobs[i], dtype=torch.uint8) for i in idx]
        try:
            imgs = decode_jpeg(tensors, mode=ImageReadMode.UNCHANGED)
        except RuntimeError:  # one of them is unreadable: each on its own, so PIL names the bad ones
            imgs = []
            for t in tensors:
                try:
                    imgs.append(decode_jpeg(t, mode=ImageReadMode.UNCHANGED))
                except RuntimeError:
                    imgs.append(None)
    for i, img in zip(idx, imgs):
        if img is not None and img.shape[0] in (1, 3) and not (max_pixels and img.shape[1] * img.shape[2] > max_pixels):
            out[i] = img.expand(3, -1, -1).numpy()  # grey: the one channel three times, as PIL's convert("RGB")
    return out


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # start-of-frame markers


def _jpeg_size(b: bytes) -> Optional[tuple[int, int]]:
    """(height, width) from a JPEG's start-of-frame segment, walking the marker segments; None if not found."""
    i = 2
    while i + 9 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            return int.from_bytes(b[i + 5:i + 7], "big"), int.from_bytes(b[i + 7:i + 9], "big")
        if marker == 0xDA:  # start of scan before any frame: not a JPEG to trust
            return None
        i += 2 + int.from_bytes(b[i + 2:i + 4], "big")
    return None


def _decode_images(items: list[_Item], channels: int, on_bad: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode in `order` (sequential reads of a compressed archive) into one (N, C, H, W) array; returns it and
    the mask of images kept. The first image decoded sets the size. RGB JPEGs go through torchvision in chunks
    (_rgb_jpegs), everything else and every image it leaves through PIL."""
    from PIL import Image
    from tqdm import tqdm

    mode = "RGB" if channels == 3 else "L"
    x: Optional[np.ndarray] = None
    keep = np.ones(len(items), dtype=bool)
    order = sorted(range(len(items)), key=lambda i: items[i].order)
    bad = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning)
    bar = tqdm(total=len(items), desc="decoding images", unit="img", file=sys.stderr, disable=len(items) < PROGRESS_MIN)
    with bar, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for start in range(0, len(order), JPEG_CHUNK):
            chunk = order[start:start + JPEG_CHUNK]
            blobs = [_read_item(items[i]) for i in chunk]  # a DataError in the slot of an unreadable item
            fast = _rgb_jpegs([b if isinstance(b, bytes) else b"" for b in blobs], Image.MAX_IMAGE_PIXELS) \
                if channels == 3 else [None] * len(chunk)
            for i, data, arr in zip(chunk, blobs, fast):
                it = items[i]
                bar.update()
                if isinstance(data, DataError):  # raised in decoding order, after the images before it
                    raise data
                if arr is None:
                    try:
                        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:
                            arr = np.asarray(im.convert(mode))
                    except bad as exc:
                        if on_bad == "skip":
                            keep[i] = False
                            continue
                        raise DataError(f"{it.name}: unreadable image ({type(exc).__name__}: {exc}); "
                                        "set on_bad_image: skip to leave such images out") from None
                    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
                if x is None:
                    x, first = np.empty((len(items), *arr.shape), dtype=np.uint8), it.name
                elif arr.shape != x.shape[1:]:
                    raise DataError(f"{it.name}: image is {arr.shape[2]}x{arr.shape[1]} but {first} is "
                                    f"{x.shape[3]}x{x.shape[2]} (WxH); all images must have the same size")
                x[i] = arr
    if x is None:
        raise DataError(f"no readable images ({len(items)} skipped, e.g. {items[0].name})")
    return x, keep


def _read_item(it: _Item) -> bytes | DataError:
    """The item's bytes, or the error to raise when decoding reaches it (the file or archive is unreadable)."""
    try:
        return it.read()
    except _ARCHIVE_ERRORS as exc:
        return DataError(f"{it.name}: cannot read ({type(exc).__name__}: {exc}; truncated or corrupt archive?)")
