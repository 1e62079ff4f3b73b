"""torchvision's AlexNet at 224x224, from scratch or fine-tuned (seed 001, "深度学习经典网络实现与分析 —— AlexNet").

The document trains torchvision's AlexNet on CIFAR-10 (upsampled) two ways: from scratch, and starting from the
official ImageNet weights with the 1000-class classifier.6 replaced by a new 10-class layer. Here the new head
keeps PyTorch's default initialisation (the document fills it with numpy's rand, uniform in [0, 1)).

pretrained: None (from scratch); "imagenet" (AlexNet_Weights.IMAGENET1K_V1 through torchvision's download cache,
hash-checked; needs internet the first time); or the path of a state dict of torchvision's 1000-class AlexNet
(torch.save(model.state_dict(), path)). Everything but classifier.6 is loaded.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from . import DropRate, register

HEAD = ("classifier.6.weight", "classifier.6.bias")


def _imagenet_state() -> dict:
    from torchvision.models import AlexNet_Weights

    weights = AlexNet_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as exc:  # no network, interrupted download, bad hash
        raise ValueError(f"pretrained: cannot get the ImageNet AlexNet weights from {weights.url} ({exc}); "
                         f"download that file and give its path as pretrained") from None


def _file_state(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, unreadable, not a torch file, unsafe pickle...
        raise ValueError(f"pretrained: cannot load weights file {path}: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained: {path} is not a state dict (expected torch.save(model.state_dict(), path))")
    return state


@register(doc="001_d561445626dccb1f.txt", input_size=224, in_channels=3)
def alexnet_torchvision(num_classes: int = 10, in_channels: int = 3, pretrained: str | None = None,
                        dropout: DropRate = 0.5) -> nn.Module:
    if in_channels != 3:
        raise ValueError(f"alexnet_torchvision takes RGB input: in_channels must be 3 (got {in_channels!r})")
    if pretrained is not None and (not isinstance(pretrained, (str, os.PathLike)) or not str(pretrained)):
        raise ValueError(f"pretrained must be null, 'imagenet' or the path of a weights file (got {pretrained!r})")

    from torchvision.models import AlexNet_Weights, alexnet  # here: importing torchvision costs 2 s a process

    model = alexnet(weights=None, num_classes=num_classes, dropout=dropout)
    if pretrained is None or model.classifier[6].weight.is_meta:  # meta: counting parameters only
        return model
    where = f"the ImageNet weights ({AlexNet_Weights.IMAGENET1K_V1.url})" if pretrained == "imagenet" else str(pretrained)
    state = _imagenet_state() if pretrained == "imagenet" else _file_state(os.fspath(pretrained))
    state = {k: v for k, v in state.items() if k not in HEAD}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(f"pretrained: {where} does not fit torchvision's AlexNet: {exc}".replace("\n", " ")) from None
    missing = [k for k in missing if k not in HEAD]
    if missing or unexpected:
        raise ValueError(f"pretrained: {where} is not a torchvision AlexNet state dict "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model
