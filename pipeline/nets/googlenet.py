"""GoogLeNet (Inception v1) for 32x32 CIFAR-10 with BatchNorm (seed 003, "GoogLeNet在cifar10上也能达到95%准确率?").

As the document's model.py: conv1 is 3x3/1 (not 7x7/2), maxpool1 and maxpool2 are removed, so the inception
blocks see 32x32 (3a, 3b), 16x16 (4a..4e) and 8x8 (5a, 5b) before global average pooling, dropout 0.4 and the
1024 -> classes layer. BasicConv2d is conv (with bias, as in the document) + BatchNorm2d + ReLU; batchnorm=False
drops the BN (the document's first experiments, 91.18%). Auxiliary classifiers after 4a and 4d (avgpool 5/3,
1x1 conv 128, fc 2048 -> 1024, ReLU, dropout 0.7, fc) run in training only when aux_logits is set; the train-mode
forward then returns (logits, aux1, aux2) (the document returns (logits, aux2, aux1); both aux losses weigh 0.3).
Module names follow the document, so its checkpoint's state dict ('net') loads.

init "kaiming_uniform": kaiming_uniform_(mode='fan_out', nonlinearity='relu') on conv and linear weights (biases
keep PyTorch's default), as the document; "default": PyTorch's default.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from . import DropRate, register

# name: (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) from the paper's table
INCEPTION = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128), "5b": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, bn: bool, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, **kwargs)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int, bn: bool) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, bn, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, bn, kernel_size=1), BasicConv2d(c3r, c3, bn, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, bn, kernel_size=1), BasicConv2d(c5r, c5, bn, kernel_size=5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), BasicConv2d(cin, proj, bn, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxClassifier(nn.Module):
    def __init__(self, cin: int, num_classes: int, bn: bool) -> None:
        super().__init__()
        self.averagePool = nn.AvgPool2d(5, stride=3)  # 16x16 -> 4x4, so fc1 sees 128 * 16 = 2048
        self.conv = BasicConv2d(cin, 128, bn, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.averagePool(x)), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, aux_logits: bool, bn: bool, dropout: float) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = BasicConv2d(in_channels, 64, bn, kernel_size=3, padding=1)
        self.conv2 = BasicConv2d(64, 192, bn, kernel_size=3, padding=1)
        for name, cfg in INCEPTION.items():
            setattr(self, f"inception{name}", Inception(*cfg, bn=bn))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        if aux_logits:
            self.aux1 = AuxClassifier(512, num_classes, bn)
            self.aux2 = AuxClassifier(528, num_classes, bn)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        aux = self.training and self.aux_logits
        x = self.inception3b(self.inception3a(self.conv2(self.conv1(x))))
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        x = self.inception5b(self.inception5a(self.maxpool4(self.inception4e(x))))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (x, aux1, aux2) if aux else x


@register(doc="003_2e726daeb3958cc9.txt", input_size=32, in_channels=3)
def googlenet_cifar(num_classes: int = 10, in_channels: int = 3, aux_logits: bool = False, batchnorm: bool = True,
                    dropout: DropRate = 0.4, init: Literal["kaiming_uniform", "default"] = "kaiming_uniform") -> nn.Module:
    model = GoogLeNet(num_classes, in_channels, aux_logits, batchnorm, dropout)
    if init == "kaiming_uniform":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")
    return model
