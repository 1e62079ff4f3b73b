"""Where a netpipe training step's time goes, against the plain fp32 loop of tests/benchmarks/test_train_speed.py,
on the same net, batch, data and optimizer, in one process (this machine, its threads).

    .venv/bin/python docs/results/cpu-train-loop/profile_step.py alexnet_thinner_4 alexnet_keras

For each variant: the benchmark's generated project (tests/benchmarks/test_train_speed._project), netpipe's real
Run from train._setup, then alternating rounds of STEPS steps each: netpipe's own step body (train._batch, then
train._step, then the bookkeeping of train_one_epoch) and the plain loop's body; the median round of each, the
parts of netpipe's step timed separately (batch: gather + augmentation + normalisation; step: forward, loss,
backward, optimizer; rest: scheduler and running sums), and a torch.profiler table of one netpipe round.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.benchmarks.test_train_speed import STEPS, _project  # noqa: E402
from tests.conftest import _cwd  # noqa: E402

BATCH = {"alexnet_thinner_4": 64, "alexnet_keras": 64, "googlenet_cifar": 32, "alexnet_mnist_bn": 32}
ROUNDS = int(__import__("os").environ.get("ROUNDS", "5"))


def plain_setup(p, variant, d):
    from torchvision.transforms import v2

    from pipeline import nets

    net = p.nets[variant]
    torch.manual_seed(0)
    model = nets.create(net.arch, d.num_classes, d.channels, input_size=net.input_size, **net.options)
    o = net.train.optimizer
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                          nesterov=o.name == "nesterov")
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in p.normalization(variant))
    aug = net.train.augment
    augment = (v2.Compose([v2.RandomCrop(net.input_size, padding=aug.crop_padding or None), v2.RandomHorizontalFlip()])
               if aug.enabled else (lambda b: b))
    model.train()

    def step(xb, yb):
        out = model((augment(xb).float() / 255 - mean) / std)
        loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def main(variants):
    from pipeline import distributed, train
    from pipeline.data import load_prepared

    for variant in variants:
        bs = BATCH[variant]
        with tempfile.TemporaryDirectory() as tmp, _cwd(Path(tmp)):
            p = _project(Path(tmp), variant, "mnist" if "mnist" in variant else "cifar10", bs)
            d, dev = distributed.setup(p.distributed)
            r, state, data, _ = train._setup(p, variant, d, dev)
            r.model.train()
            gen = torch.Generator().manual_seed(0)
            perm = torch.randperm(len(r.x_train), generator=gen)[: STEPS * r.bs].view(STEPS, r.bs)
            loss_buf = torch.zeros(STEPS)
            correct = torch.zeros((), dtype=torch.long)
            parts = {"batch": 0.0, "step": 0.0, "rest": 0.0}

            def ours():
                nonlocal correct
                for s in range(STEPS):
                    t0 = time.perf_counter()
                    xb, yb = train._batch(r, perm[s], gen)
                    t1 = time.perf_counter()
                    loss, logits = train._step(r, xb, yb)
                    t2 = time.perf_counter()
                    r.sched.step()
                    loss_buf[s] = loss.detach()
                    correct += (logits.detach().argmax(1) == yb).sum()
                    t3 = time.perf_counter()
                    parts["batch"] += t1 - t0
                    parts["step"] += t2 - t1
                    parts["rest"] += t3 - t2

            pd = load_prepared(p.dataset_of(variant))
            x = torch.from_numpy(pd.x_train[: bs * STEPS]).view(STEPS, bs, *pd.x_train.shape[1:])
            y = torch.from_numpy(pd.y_train[: bs * STEPS]).view(STEPS, bs)
            plain_step = plain_setup(p, variant, pd)

            def plain():
                for s in range(STEPS):
                    plain_step(x[s], y[s])

            ours(), plain()  # warm-up
            for k in parts:
                parts[k] = 0.0
            t_ours, t_plain = [], []
            for _ in range(ROUNDS):
                t0 = time.perf_counter(); ours(); t_ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter(); plain(); t_plain.append(time.perf_counter() - t0)
            mo, mp = statistics.median(t_ours), statistics.median(t_plain)
            n = ROUNDS * STEPS
            print(f"\n## {variant}, batch {bs}, {torch.get_num_threads()} threads, netpipe uses {r.fast.label}")
            print(f"netpipe {STEPS * bs / mo:.1f} img/s, plain {STEPS * bs / mp:.1f} img/s: ratio {mp / mo:.3f} "
                  f"(median of {ROUNDS} alternating rounds of {STEPS} steps)")
            print("netpipe per step: " + ", ".join(f"{k} {1e3 * v / n:.2f} ms" for k, v in parts.items()))
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                ours()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                plain()
            print("plain:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


if __name__ == "__main__":
    main(sys.argv[1:] or ["alexnet_thinner_4", "alexnet_keras"])
