"""A variant as every stage sees it: `Plan` (and the bench's `BenchPlan`), resolved once from params by
`Params.plan(VARIANT)` (pipeline/params.py), the quick check's overlay included, then frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # the field types only: params.py builds a Plan, so it imports this module
    from .params import DatasetParams, DistributedParams, ExportParams, NetParams


@dataclass(frozen=True)
class BenchPlan:
    """What `netpipe bench` measures for a variant (the quick check's shorter matrix applied)."""
    batch_sizes: tuple[int, ...]
    iterations: int
    warmup: int
    backends: tuple[str, ...]  # torch_eager first (the reference), then BENCH_BACKENDS' order
    precisions: tuple[str, ...]  # fp32 first
    min_seconds: float
    cpu_max_seconds: float
    compile_budget_s: float
    cpu_threads: Optional[int]


@dataclass(frozen=True)
class Plan:
    """One variant as every stage sees it, resolved once from params (`Params.plan`): no stage reads the quick
    check's settings or derives the dataset's facts itself."""
    variant: str
    dataset: str
    data: DatasetParams
    dataset_format: str  # "folder", or the official format read (cifar10, mnist)
    channels: int
    net: NetParams  # the effective recipe: the quick check shortens its training
    recipe: NetParams  # the recipe as params.yaml states it (the quick check's schedule still follows it)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    quick: bool
    eval_samples: Optional[int]  # test and validation images evaluate, export and validation use (None: all)
    bench: BenchPlan
    export: ExportParams
    distributed: DistributedParams
    seed: int
    config_hash: str  # Params.variant_hash: everything that determines the training result
