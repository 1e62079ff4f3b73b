"""Small AlexNet for 32x32 CIFAR-10 (seed 000, "Alexnet训练Cifar10", code: github.com/diudiuzhi/TensorAlexnet).

conv1..conv5 are 3x3 stride-1 SAME convolutions with 24/96/192/192/96 channels and ReLU, LRN after conv1 and
conv2 (TensorFlow's CIFAR-tutorial LRN: tf.nn.lrn(depth_radius=4, bias=1, alpha=0.001/9, beta=0.75), which is
nn.LocalResponseNorm(9, alpha=0.001, k=1, beta=0.75) because PyTorch divides alpha by the window size), 2x2
max-pools after conv1, conv2 and conv5, then FC 1024 -> 1024 -> classes with ReLU and dropout.

The document's "dropout 0.9" is TensorFlow's keep_prob: the default drop rate here is 0.1 (its 0.5 experiment
is rate 0.5).

Initialisation: the document names "MSRA sqrt(2/n)", but its code draws every weight from a truncated normal
with std 0.01 (tf.truncated_normal_initializer, cut at 2 std), biases zero, on pixel-scale inputs (0..255) minus
the training mean. init="seed" (the default) is that code; init="msra" (He normal) is what the text says. He init
on those inputs makes the 98,304-wide FC1's inputs nearly parallel and the first SGD steps blow the logits up (loss
NaN or a dead net): the recipe in params.yaml pairs init="seed" with the seed's pixel-scale normalisation (std 1/255).
init="seed_v1" is the code of its experiment 1 (commits 315f162..74e99a4, before "fix wd" set every std to 0.01):
per-layer stds 0.055, 0.0034, 0.0034, 0.0024, 0.0034 for conv1..conv5 and 0.01 for the FC layers, which it ran on
the raw pixels (0..255, no mean subtracted: that came with commit 9556e09). No recipe in params.yaml uses it (it
stays at loss ln 10 far longer: docs/results/learn/).

Input size: FC1's width follows the input (96 x input_size^2 with stride-1 pools): 32 gives the document's
98,304; 24, the random 24x24 crops of its experiments 2-7, gives 55,296.

Pooling stride: the document writes "max pool: 2*2" and "FC1: 98304 * 1024"; 98304 = 32*32*96, i.e. its code
pools with a 2x2 window at stride 1 (tf.nn.max_pool(..., strides=1, padding='SAME')) and never downsamples.
pool_stride=2 halves the resolution at each pool (32->16->8->4, FC1 1536 -> 1024);
pool_stride=1 (the default) is the document's code (FC1 98304 -> 1024, 102.4M parameters).

Variants of its experiments: lrn="first"/"none" (experiment 4), dropout=0.5 (5), head="gap" (6: global average
pooling of conv5 replaces fc1/fc2), batchnorm=True (7: BatchNorm2d after each conv, before ReLU; eps 1e-3 and
moving-average decay 0.9 as in its code).
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from . import DropRate, register, trunc_normal_

SEED_STD = 0.01  # the seed's code: tf.truncated_normal_initializer(stddev=0.01) for every weight, biases 0
SEED_V1_CONV_STDS = (0.055, 0.0034, 0.0034, 0.0024, 0.0034)  # its experiment 1's conv1..conv5 (FC: SEED_STD)


@register(doc="000_316750ea501261e6.txt", input_size=32, in_channels=3)
def alexnet_cifar(num_classes: int = 10, in_channels: int = 3, lrn: Literal["both", "first", "none"] = "both",
                  dropout: DropRate = 0.1, head: Literal["fc", "gap"] = "fc", batchnorm: bool = False,
                  init: Literal["seed", "seed_v1", "msra", "default"] = "seed", pool_stride: Literal[1, 2] = 1,
                  input_size: int = 32) -> nn.Module:

    def stage(cin: int, cout: int, norm: bool, pool: bool) -> list[nn.Module]:
        layers = [nn.Conv2d(cin, cout, 3, padding=1)]
        layers += [nn.BatchNorm2d(cout, eps=1e-3)] if batchnorm else []
        layers += [nn.ReLU(inplace=True)]
        layers += [nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0)] if norm else []
        if pool:  # TF 'SAME' 2x2/1 pads one row/column at the end; zeros = -inf here since inputs are >= 0
            layers += [nn.MaxPool2d(2)] if pool_stride == 2 else [nn.ZeroPad2d((0, 1, 0, 1)), nn.MaxPool2d(2, 1)]
        return layers

    features = nn.Sequential(
        *stage(in_channels, 24, lrn != "none", True),
        *stage(24, 96, lrn == "both", True),
        *stage(96, 192, False, False),
        *stage(192, 192, False, False),
        *stage(192, 96, False, True),
    )
    if head == "gap":
        classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, num_classes))
    else:
        side = input_size // pool_stride**3 if pool_stride == 2 else input_size
        classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(96 * side * side, 1024), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )
    model = nn.Sequential(features, classifier)
    conv_stds = iter(SEED_V1_CONV_STDS)
    for m in model.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)) or init == "default":
            continue
        if init == "msra":
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        else:  # TF's truncated normal: cut at 2 std
            std = next(conv_stds) if init == "seed_v1" and isinstance(m, nn.Conv2d) else SEED_STD
            trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
        nn.init.zeros_(m.bias)
    return model
