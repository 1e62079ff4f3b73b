"""Where a Keras-family net dies: the first SGD steps of a variant's recipe, printing the loss, the logits' spread,
the gradient norm and, per ReLU, the fraction of units (channels for convs) that output zero for every image of the
batch ("dead" on that batch). Plain PyTorch around netpipe's own net, optimizer and normalisation, one thread:

    python docs/results/learn/dead_units.py VARIANT STEPS SEED [aug [meanfill]]

run in a checkout whose data/prepared/cifar10.npz exists (`netpipe prepare cifar10`). Batches of 64 drawn with
replacement from the training split; `aug`: the recipe's augmentation (pipeline/transforms.augment: pad 4 with
zeros = black, random crop, flip); `aug meanfill`: the same crop and flip, padding with the dataset mean instead
(what Keras' ImageDataGenerator fill_mode='constant', cval=0 does on standardised images).
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import nets, params, transforms
from pipeline.recipe import make_optimizer

torch.set_num_threads(1)
variant, steps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
aug, meanfill = "aug" in sys.argv[4:], "meanfill" in sys.argv[4:]
p = params.load("params.yaml")
net = p.variant(variant)
d = np.load("data/prepared/cifar10.npz")
x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
torch.manual_seed(seed)
model = nets.create(net.arch, num_classes=10, **net.options)
opt = make_optimizer(model, net)
mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in p.normalization(variant))
acts: dict[int, torch.Tensor] = {}
for i, m in enumerate(m for m in model.modules() if isinstance(m, torch.nn.ReLU)):
    m.register_forward_hook(lambda mod, inp, out, i=i: acts.__setitem__(i, out.detach()))
g = torch.Generator().manual_seed(seed)
for s in range(steps):
    idx = torch.randint(0, len(y), (64,), generator=g)
    if meanfill:
        fill = (mean.view(-1) * 255).round().to(torch.uint8).view(1, -1, 1, 1)
        xp = fill.expand(64, -1, 40, 40).clone()
        xp[:, :, 4:36, 4:36] = x[idx]
        oy, ox = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
        flip = torch.rand(64, generator=g) < 0.5
        xb = torch.stack([xp[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32] for i in range(64)])
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
    else:
        xb = transforms.augment(x[idx], net.train.augment, 32, g) if aug else x[idx]
    xb = (xb.float() / 255 - mean) / std
    out = model(xb)
    loss = F.cross_entropy(out, y[idx])
    opt.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)  # measures only (the norm is never reached)
    opt.step()
    if s % max(1, steps // 15) == 0 or s == steps - 1:
        dead = [f"{(a.flatten(2).amax(-1) if a.dim() == 4 else a).amax(0).le(0).float().mean().item():.2f}"
                for a in acts.values()]
        print(f"{s:4d} loss {loss.item():.3f} logit_std {out.std().item():.3g} gradnorm {gn.item():.3g} "
              f"dead(per relu) {' '.join(dead)}", flush=True)
