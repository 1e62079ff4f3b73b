"""AlexNet on MNIST upsampled to 227x227x1 (seed 004, "【深度学习笔记2.2.2】AlexNet训练mnist").

conv1 11x11/4 VALID (96) -> 55, ReLU, LRN, maxpool 3/2 -> 27; conv2 5x5 SAME (256), ReLU, LRN, maxpool -> 13;
conv3 3x3 SAME (384), conv4 3x3 (384), conv5 3x3 (256), ReLU each, maxpool -> 6; fc 9216 -> 4096 -> 4096 ->
classes with ReLU and dropout 0.5 (the document's tf.nn.dropout(x, 0.5) keep_prob is a rate of 0.5 too).

norm: "lrn" = tf.nn.local_response_normalization(depth_radius=2, alpha=2e-05, beta=0.75, bias=1.0), i.e.
      nn.LocalResponseNorm(5, alpha=2e-05 * 5, beta=0.75, k=1.0) (PyTorch divides alpha by the window size);
      "batchnorm" = experiment 6: BatchNorm after every conv and after fc1 and fc2 (before the ReLU), no LRN,
      epsilon 1e-3 as the document (its moving-average decay 0.999 never mattered there because it normalised
      with batch statistics at test time too; PyTorch's default momentum 0.1 keeps eval-mode statistics usable);
      "none".
groups: 2 = experiment 5, conv4 and conv5 each split into two groups (biases stay per output channel).
init:  "seed"    = experiment 2: weights truncated normal (mean 0, std 0.01), biases truncated normal
                   (mean 0.005, std 0.1), truncated at 2 std as tf.truncated_normal;
       "unit"    = experiment 1: tf.truncated_normal's defaults (std 1) for weights and biases 0.1; it diverges
                   (loss nan from the first epoch), kept to reproduce that;
       "default" = PyTorch's default.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from . import DropRate, register, trunc_normal_


@register(doc="004_9d957cc7acd56c55.txt", input_size=227, in_channels=1)
def alexnet_mnist(num_classes: int = 10, in_channels: int = 1, norm: Literal["lrn", "batchnorm", "none"] = "lrn",
                  groups: Literal[1, 2] = 1, init: Literal["seed", "unit", "default"] = "seed",
                  dropout: DropRate = 0.5) -> nn.Module:
    bn = norm == "batchnorm"

    def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 1, g: int = 1, lrn: bool = False) -> list:
        layers = [nn.Conv2d(cin, cout, k, stride, padding, groups=g)]
        layers += [nn.BatchNorm2d(cout, eps=1e-3)] if bn else []
        layers += [nn.ReLU(inplace=True)]
        layers += [nn.LocalResponseNorm(5, alpha=2e-05 * 5, beta=0.75, k=1.0)] if lrn and norm == "lrn" else []
        return layers

    def fc(cin: int, cout: int) -> list:
        return [nn.Linear(cin, cout), *([nn.BatchNorm1d(cout, eps=1e-3)] if bn else []), nn.ReLU(inplace=True),
                nn.Dropout(dropout)]

    model = nn.Sequential(
        nn.Sequential(
            *conv(in_channels, 96, 11, stride=4, padding=0, lrn=True), nn.MaxPool2d(3, 2),
            *conv(96, 256, 5, padding=2, lrn=True), nn.MaxPool2d(3, 2),
            *conv(256, 384, 3), *conv(384, 384, 3, g=groups), *conv(384, 256, 3, g=groups), nn.MaxPool2d(3, 2),
        ),
        nn.Sequential(nn.Flatten(), *fc(256 * 6 * 6, 4096), *fc(4096, 4096), nn.Linear(4096, num_classes)),
    )
    if init != "default":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and init == "seed":
                trunc_normal_(m.weight, 0.0, 0.01, -0.02, 0.02)
                trunc_normal_(m.bias, 0.005, 0.1, 0.005 - 0.2, 0.005 + 0.2)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                trunc_normal_(m.weight, 0.0, 1.0, -2.0, 2.0)
                nn.init.constant_(m.bias, 0.1)
    return model
