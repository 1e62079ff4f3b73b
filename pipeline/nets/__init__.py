"""One registry of networks by name (timm-style): adding a network is one decorated builder function.

A builder takes `num_classes`, `in_channels` and its own keyword options (the `options:` of a variant in
params.yaml) and returns an `nn.Module` whose forward gives logits in eval mode; in train mode a network
with auxiliary classifiers returns `(logits, aux1, aux2, ...)`.

Options are checked from the builder's signature when it is called through the registry: `bool` must be true or
false, `Literal[...]` one of its values (a bool is not an int), `DropRate` a number in [0, 1). A builder checks by
hand only what a signature cannot say (e.g. alexnet_torchvision's `pretrained`).
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal

import torch
from torch import nn

from ..errors import ParamsError


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., nn.Module]
    doc: str  # the seed document it reproduces
    input_size: int  # the input resolution it was designed for
    in_channels: int
    reported_params: int | None = None  # parameter count stated by the seed document, if the architecture fixes it
    options: dict[str, Any] = field(default_factory=dict)  # option -> default


DropRate = Annotated[float, "a drop rate in [0, 1)"]


@torch.no_grad()
def trunc_normal_(t: torch.Tensor, mean: float, std: float, a: float, b: float) -> torch.Tensor:
    """Fill `t` from a normal distribution cut to [a, b] by rejection (TensorFlow's truncated_normal: a value
    outside is drawn again): the distribution of torch.nn.init.trunc_normal_, drawn faster. Torch 2.13's draws the
    whole tensor again while any value is outside, about 4.5 full draws for a cut at 2 std (4.5 s for the 58M
    weights of alexnet_cifar on 2 CPU cores); this draws again only the values outside (5% of them, then 5% of
    those, ...): about 1.05 draws. Cuts that keep less than 30% of the mass go to torch's, which samples those
    differently. The draws differ from torch's (the same distribution, other numbers): the 000 and 004 nets use this
    one; the Keras family (002) keeps torch's, whose small conv kernels cost little and whose committed 60-epoch
    alexnet_thinner_4_short run started from those draws."""
    if t.is_meta:
        return t
    scale = std * math.sqrt(2)
    keep = 0.5 * (math.erf((b - mean) / scale) - math.erf((a - mean) / scale))  # the normal's mass inside [a, b]
    if keep <= 0.3 or not t.is_contiguous():
        return nn.init.trunc_normal_(t, mean, std, a, b)
    lo, hi = t.new_tensor(a).item(), t.new_tensor(b).item()  # the bounds as the tensor's dtype holds them
    flat = t.view(-1).normal_(mean, std)
    out = torch.nonzero((flat < lo) | (flat > hi)).squeeze(1)
    while len(out):
        again = torch.empty(len(out), dtype=t.dtype, device=t.device).normal_(mean, std)
        flat[out] = again
        out = out[(again < lo) | (again > hi)]
    return t


def _checker(name: str, hint: Any) -> Callable[[Any], None] | None:
    """A check of one option's value from its annotation, raising ValueError with a one-line message."""
    if hint is bool:
        def check(v: Any) -> None:
            if not isinstance(v, bool):
                raise ValueError(f"{name} must be true or false (got {v!r})")
        return check
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)

        def check(v: Any) -> None:
            if isinstance(v, bool) or v not in allowed or type(v) not in {type(a) for a in allowed}:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))} (got {v!r})")
        return check
    if hint == DropRate:
        def check(v: Any) -> None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"{name} must be a drop rate in [0, 1) (got {v!r})")
        return check
    return None


_REGISTRY: dict[str, Entry] = {}
# builder arguments that come from the variant, not from its `options`: a builder that takes `input_size` (a net
# whose classifier width follows the input, e.g. 000's FC1) gets the variant's input_size
FIXED = ("num_classes", "in_channels", "input_size")
_LOADED = False


def register(*, doc: str, input_size: int, in_channels: int = 3, reported_params: int | None = None):
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        sig = inspect.signature(fn)
        opts = {k: p.default for k, p in sig.parameters.items() if k not in FIXED}
        hints = typing.get_type_hints(fn, include_extras=True)
        checks = {k: c for k in opts if k in hints and (c := _checker(k, hints[k])) is not None}

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> nn.Module:
            for k, v in sig.bind_partial(*args, **kwargs).arguments.items():
                if k in checks:
                    checks[k](v)
            return fn(*args, **kwargs)

        _REGISTRY[fn.__name__] = Entry(fn.__name__, checked, doc, input_size, in_channels, reported_params, opts)
        return checked

    return deco


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def entry(arch: str) -> Entry:
    _load()
    if arch not in _REGISTRY:
        raise ParamsError(f"unknown arch '{arch}'; allowed: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[arch]


def create(arch: str, num_classes: int = 10, in_channels: int | None = None, where: str = "options",
           input_size: int | None = None, **options: Any) -> nn.Module:
    """Build `arch` with `options`; an unknown option or a bad value raises ParamsError naming `where`."""
    e = entry(arch)
    unknown = sorted(set(options) - set(e.options))
    if unknown:
        raise ParamsError(f"{where}.{unknown[0]}: unknown option for {arch}; allowed: {', '.join(e.options) or '(none)'}")
    if "input_size" in inspect.signature(e.builder).parameters:
        options["input_size"] = input_size or e.input_size
    try:
        return e.builder(num_classes=num_classes, in_channels=in_channels or e.in_channels, **options)
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{where}: {exc}") from None


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def param_count(arch: str, num_classes: int = 10, in_channels: int | None = None, input_size: int | None = None,
                **options: Any) -> int:
    """Parameter count without allocating the weights (built on the meta device)."""
    with torch.device("meta"):
        return count_params(create(arch, num_classes, in_channels, input_size=input_size, **options))


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    from . import alexnet_cifar, alexnet_keras, alexnet_mnist, alexnet_torchvision, googlenet  # noqa: F401  (registers)

    _LOADED = True
