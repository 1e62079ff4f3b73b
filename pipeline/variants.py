"""`netpipe variants`: every variant's plan as its stages will use it (Params.plan, the quick check applied)."""

from __future__ import annotations

from . import nets, transforms
from .params import NetParams, Params, Plan


def recipe(net: NetParams) -> str:
    t, o, s, a = net.train, net.train.optimizer, net.train.schedule, net.train.augment
    opt = f"{o.name} lr {o.lr:g}" + (f" m {o.momentum:g}" if o.name in ("sgd", "nesterov") and o.momentum else "")
    if o.weight_decay:
        opt += f" wd {o.weight_decay:g}" + (f" ({o.decay_on} kernels)" if o.decay_on != "all" else "")
    sched = s.name + (f" warmup {s.warmup_epochs:g}" if s.warmup_epochs else "")
    if s.name == "multistep":
        sched += f" {s.milestones} x{s.gamma:g}"
    elif s.name in ("step", "exponential"):
        sched += f" x{s.gamma:g}" + (f" / {s.decay_steps} steps" if s.decay_steps else "")
    aug = "no aug" if not a.enabled else "+".join(
        x for x in [f"resize{a.resize}" if a.resize else "", f"pad{a.crop_padding}-crop" if a.crop_padding or a.crop else "",
                    "flip" if a.flip else "", "jitter" if a.brightness or a.contrast else ""] if x) or "none"
    return f"{t.epochs} ep, bs {t.batch_size}, {opt}, {sched}, {aug}"


def plan_cells(pl: Plan) -> tuple[str, str, str]:
    """A plan's input, recipe and evaluation as `netpipe variants` prints them."""
    net, ev = pl.net, pl.net.eval
    mean = "/".join(f"{x:g}" for x in pl.mean)
    std = "/".join(f"{x:g}" for x in pl.std)
    inp = f"{pl.channels}x{net.input_size}x{net.input_size}, mean {mean}, std {std}"
    how = recipe(net) + (" (quick check: the recipe's first steps)" if pl.quick else "")
    views = (([f"resize {ev.resize}"] if ev.resize else []) + ([f"pad {ev.pad}"] if ev.pad else [])
             + [f"{ev.crop} crop x{transforms.num_crops(ev)}"])
    evaluation = " + ".join(views) + (f", {pl.eval_samples} images" if pl.eval_samples else "")
    return inp, how, evaluation


def list_variants(p: Params) -> None:
    """Every variant's plan (Params.plan: what its stages will use, the quick check applied); variants that
    `variants:` does not build show their nets entry."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="netpipe variants (params.yaml)" + (": the quick check is on" if p.quick.enabled else ""))
    for col in ("variant", "arch", "options", "dataset", "params", "seed doc", "input", "recipe", "evaluation"):
        table.add_column(col, overflow="fold")
    for name, net in p.nets.items():
        dataset = p.variants.get(name)
        chans = p.channels(dataset) if dataset else None
        e = nets.entry(net.arch)
        count = nets.param_count(net.arch, num_classes=10, in_channels=chans, input_size=net.input_size, **net.options)
        opts = " ".join(f"{k}={v}" for k, v in net.options.items())
        cells = plan_cells(p.plan(name)) if dataset else ("-", recipe(net), "-")
        table.add_row(name, net.arch, opts, dataset or "- (not built)", f"{count:,}", e.doc.split("_")[0], *cells)
    Console(width=260).print(table)
