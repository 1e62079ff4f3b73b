"""Image files -> model inputs, with numpy and PIL only (predict never imports torch).

It repeats what data preparation and evaluation did to the prepared uint8 arrays (pipeline/data.py,
pipeline/transforms.py), from the facts an exported model carries in its ONNX metadata:

1. decode: PNG, JPEG, BMP or WebP (the formats data preparation reads; no other PIL plugin sees the bytes), first
   frame, EXIF orientation applied. At most MAX_PIXELS pixels: PIL's DecompressionBombWarning and
   DecompressionBombError are errors, as is anything truncated or corrupt (`ImageError`, one line).
2. colour, to the model's channels (RGB or L): 16-bit and 32-bit grey ("I;16", "I") are scaled to 8 bits
   (/257); palette, CMYK, bilevel, ... convert as PIL does. Transparency is composited on white, as image
   viewers show it. Digit models (dataset format "mnist") composite on the colour that contrasts with the ink
   (the alpha-weighted mean brightness), so a digit drawn dark or light on a transparent canvas survives.
3. digit-style (mnist format only): MNIST digits are white on black. If the image's border (a ring 5% of the
   shorter side wide) is mostly light, the image is inverted. Draw the digit large and centred, as MNIST's
   are (about 20x20 of 28x28); no other normalisation (centring by mass, deskewing) is done.
4. native size: centre-cropped to the dataset's aspect ratio, then resized to its image size (e.g. 32x32 for
   CIFAR-10, 28x28 for MNIST): what the model saw in training.
5. the evaluation protocol (the metadata's `eval`): optional square resize, padding (constant 0, reflect or
   replicate), the centre crop or the 5/10 crops in torchvision's FiveCrop/TenCrop order, each resized to the
   input size, then normalised with the metadata's mean/std.

Every resize is PIL's bilinear filter, which antialiases when shrinking: the algorithm torchvision's antialiased
uint8 resize reproduces, so these arrays match transforms.py's to within one grey level.
"""

from __future__ import annotations

import warnings
from pathlib import Path
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
# The plugins of FORMATS, registered up front: Image.open(formats=FORMATS) would otherwise call Image.init(), which
# imports all of PIL's ~40 plugins (~30 ms of a cold `netpipe predict` on a JPEG), to find the ones not yet loaded.
from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401

from .errors import first_line

FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
MAX_PIXELS = 40_000_000  # e.g. 8000x5000; larger images are refused (decompression bombs)
PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


class ImageError(Exception):
    """An image file that cannot be used; the message is one line."""


# ---- file -> uint8 (C, H, W) at the native size -------------------------------------------------------------
def load(path: str | Path, channels: int, image_hw: tuple[int, int], digits: bool = False) -> np.ndarray:
    """Decode `path` and convert it as training data was: uint8 (channels, H, W) with (H, W) = image_hw."""
    img = colour(open_image(path), channels, digits)
    if digits and border_is_light(np.asarray(img)):
        img = ImageOps.invert(img)
    arr = np.asarray(fit(img, image_hw))
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise ImageError("no such file")
    if path.is_dir():
        raise ImageError("is a directory, not an image")
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)")
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's complaints about metadata (corrupt EXIF: orientation skipped)
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path, formats=FORMATS) as img:  # closed here (animated files keep it open otherwise)
                    img.load()
                    return ImageOps.exif_transpose(img)  # a new image: the transposed one or a copy
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large: more than {MAX_PIXELS:,} pixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image") from None
    except PermissionError:
        raise ImageError("cannot read it: permission denied") from None
    except Exception as exc:  # truncated data, bad checksums, broken headers: OSError, SyntaxError, ValueError, ...
        raise ImageError(f"corrupt or truncated image ({first_line(exc)})") from None


def colour(img: Image.Image, channels: int, digits: bool = False) -> Image.Image:
    """To mode "RGB" (channels 3) or "L" (channels 1), 8 bits, transparency composited."""
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit integer or float grey
        a = np.asarray(img, dtype=np.float64)
        a = a / 257.0 if img.mode.startswith("I") else a
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        rgb, alpha = rgba[..., :3], rgba[..., 3:] / 255.0
        bg = 255.0
        if digits:
            ink = (rgb @ [0.299, 0.587, 0.114])[..., None] * alpha
            bg = 0.0 if ink.sum() / max(alpha.sum(), 1e-9) > 127.5 else 255.0
        img = Image.fromarray(np.clip(np.rint(rgb * alpha + bg * (1 - alpha)), 0, 255).astype(np.uint8), "RGB")
    return img.convert("RGB" if channels == 3 else "L")


def border_is_light(gray: np.ndarray) -> bool:
    """More than half of the border ring (5% of the shorter side, at least 1 pixel) brighter than mid-grey."""
    if gray.ndim == 3:
        gray = gray.mean(-1)
    h, w = gray.shape
    b = max(1, round(0.05 * min(h, w)))
    ring = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[b:-b, :b].ravel(), gray[b:-b, -b:].ravel()])
    return bool((ring > 127.5).mean() > 0.5)


def fit(img: Image.Image, image_hw: tuple[int, int]) -> Image.Image:
    """Centre-crop to the aspect ratio of image_hw, then resize to it (bilinear, antialiased)."""
    h, w = image_hw
    iw, ih = img.size
    if iw * h > ih * w:  # too wide
        cw = ih * w / h
        box = ((iw - cw) / 2, 0, (iw + cw) / 2, ih)
    else:
        ch = iw * h / w
        box = (0, (ih - ch) / 2, iw, (ih + ch) / 2)
    return img.resize((w, h), Image.BILINEAR, box=box)


# ---- the evaluation protocol on uint8 (C, H, W) arrays ------------------------------------------------------
def resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """uint8 (C, H, W) -> (C, h, w), channel by channel (PIL bilinear, antialiased)."""
    if x.shape[1:] == (h, w):
        return x
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(c)).resize((w, h), Image.BILINEAR)) for c in x])


def centre(x, crop: int):
    """The centre crop of the last two axes, with torchvision's rounding: numpy (C, H, W) here, and torch batches
    in pipeline/transforms.py (tests check it against v2.functional.center_crop)."""
    h, w = x.shape[-2:]
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    return x[..., top:top + crop, left:left + crop]


def five(x, crop: int) -> list:
    """torchvision's FiveCrop of the last two axes, in its order (top-left, top-right, bottom-left, bottom-right,
    centre): slices, so the same code cuts numpy (C, H, W) arrays here and torch batches in transforms.py."""
    h, w = x.shape[-2:]
    return [x[..., :crop, :crop], x[..., :crop, w - crop:], x[..., h - crop:, :crop], x[..., h - crop:, w - crop:],
            centre(x, crop)]


def views(x: np.ndarray, ev: dict, input_size: int, multi: bool = False) -> np.ndarray:
    """uint8 (K, C, S, S): the centre crop (K = 1) or the 5/10 crops of the eval protocol `ev` (EvalParams as a
    dict), as transforms.center_crop / multi_crops cut them."""
    if ev.get("resize"):
        x = resize(x, ev["resize"], ev["resize"])
    pad = ev.get("pad", 0)
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode=PAD_MODES[ev.get("padding_mode", "reflect")])
    crop = ev["crop"]
    if not multi:
        crops = [centre(x, crop)]
    else:
        crops = five(x, crop) + (five(x[:, :, ::-1], crop) if ev.get("flips", True) else [])
    return np.stack([resize(c, input_size, input_size) for c in crops])


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (..., C, H, W) -> float32, as transforms.normalize."""
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x.astype(np.float32) / np.float32(255.0) - m) / s


