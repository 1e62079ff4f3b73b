"""The Keras AlexNet family on 32x32 CIFAR-10 (seed 002, "【Keras-AlexNet】CIFAR-10").

conv1(96) [maxpool] conv5x5(256) maxpool conv3x3(384) conv3x3(384) conv3x3(256) maxpool flatten
Dense(4096) relu dropout Dense(4096) relu dropout Dense(classes); every conv has ReLU and 'same' padding,
every max-pool is 3x3 stride 2 'same'.

- alexnet_keras: conv1 11x11 stride 4 + first max-pool (32 -> 8 -> 4 -> 2 -> 1): 21,622,154 params as reported.
  TensorFlow's 'same' pads the 11x11/4 conv asymmetrically (7 in all: 3 before, 4 after; exact for any input
  side divisible by 4) and each 3x3/2 'same' pool only at the end, which ceil_mode reproduces for even sides.
- alexnet_slim: conv1 3x3 stride 1 and no first max-pool (32 -> 16 -> 8): 87,650,186 as reported.
- alexnet_slim_regular: slim with he_normal conv kernels; its L2 1e-4 is weight decay in the training
  recipe, not part of the net: 87,650,186 as reported.
- alexnet_thinner_4: slim_regular with every filter count and Dense width divided by 4: 5,488,106 as reported.
- alexnet_thinner_2: the document says "every filter count / 2, fully connected included" but reports
  6,074,250, while a plain halving (48/128/192/192/128 filters, Dense 2048) gives 21,925,834. 6,074,250 is
  exactly slim_regular with conv1..conv4 halved (48/128/192/192) while conv5 (64 filters) and both Dense layers
  (1024) keep thinner_4's widths: the author most likely edited thinner_4's code and left the last conv and the
  Dense layers as they were. A brute-force search over per-layer widths (x1, 1/2, 1/4, 1/8, 3/4, x2 of each
  layer's original) with the slim geometry finds no other match, and model.summary() printed the network that
  was trained, so that network is built here.

init (conv kernels; Dense kernels are always Keras' default glorot_uniform and all biases zero, as in the
document's code, which sets kernel_initializer on the convs only):
  "uniform"   Keras 'uniform' = RandomUniform(-0.05, 0.05) (default for alexnet_keras and alexnet_slim)
  "he_normal" Keras he_normal: truncated normal (cut at 2 sigma) scaled so its std is sqrt(2 / fan_in)
              (default for slim_regular and the thinner nets)
  "default"   PyTorch's default initialisation for every layer.
Keras flattens channels-last, PyTorch channels-first: same parameter count, different order in Dense 1.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from . import DropRate, register

DOC = "002_ee6a6acb78d991ab.txt"
Init = Literal["uniform", "he_normal", "default"]
_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2] (Keras divides by it)


def _alexnet(num_classes: int, in_channels: int, dropout: float, init: str, *, slim: bool,
             widths: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256), fc: int = 4096) -> nn.Module:
    c1, c2, c3, c4, c5 = widths

    def conv(cin: int, cout: int, k: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True)]

    def pool() -> nn.Module:
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    if slim:
        first, side = conv(in_channels, c1, 3), 8  # 32 -> (pool) 16 -> (pool) 8
    else:
        first, side = [nn.ZeroPad2d((3, 4, 3, 4)), nn.Conv2d(in_channels, c1, 11, stride=4), nn.ReLU(inplace=True),
                       pool()], 1  # 32 -> 8 -> 4 -> 2 -> 1
    model = nn.Sequential(
        nn.Sequential(*first, *conv(c1, c2, 5), pool(), *conv(c2, c3, 3), *conv(c3, c4, 3), *conv(c4, c5, 3), pool()),
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(c5 * side * side, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        ),
    )
    if init != "default":
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and init == "uniform":
                nn.init.uniform_(m.weight, -0.05, 0.05)
            elif isinstance(m, nn.Conv2d):
                std = math.sqrt(2.0 / m.weight[0].numel()) / _TRUNC_STD
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.zeros_(m.bias)
    return model


@register(doc=DOC, input_size=32, in_channels=3, reported_params=21_622_154)
def alexnet_keras(num_classes: int = 10, in_channels: int = 3, dropout: DropRate = 0.5, init: Init = "uniform") -> nn.Module:
    return _alexnet(num_classes, in_channels, dropout, init, slim=False)


@register(doc=DOC, input_size=32, in_channels=3, reported_params=87_650_186)
def alexnet_slim(num_classes: int = 10, in_channels: int = 3, dropout: DropRate = 0.5, init: Init = "uniform") -> nn.Module:
    return _alexnet(num_classes, in_channels, dropout, init, slim=True)


@register(doc=DOC, input_size=32, in_channels=3, reported_params=87_650_186)
def alexnet_slim_regular(num_classes: int = 10, in_channels: int = 3, dropout: DropRate = 0.5,
                         init: Init = "he_normal") -> nn.Module:
    return _alexnet(num_classes, in_channels, dropout, init, slim=True)


@register(doc=DOC, input_size=32, in_channels=3, reported_params=6_074_250)
def alexnet_thinner_2(num_classes: int = 10, in_channels: int = 3, dropout: DropRate = 0.5,
                      init: Init = "he_normal") -> nn.Module:
    return _alexnet(num_classes, in_channels, dropout, init, slim=True, widths=(48, 128, 192, 192, 64), fc=1024)


@register(doc=DOC, input_size=32, in_channels=3, reported_params=5_488_106)
def alexnet_thinner_4(num_classes: int = 10, in_channels: int = 3, dropout: DropRate = 0.5,
                      init: Init = "he_normal") -> nn.Module:
    return _alexnet(num_classes, in_channels, dropout, init, slim=True, widths=(24, 64, 96, 96, 64), fc=1024)
