"""Typed params: every knob of the pipeline, validated when a command starts.

`load(path)` returns a `Params` or raises `ParamsError` with one line naming the key and what is allowed.
Only pydantic and yaml are imported here, so the CLI stays fast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ParamsError
from .params_errors import CrossError, format_error
from .plan import BenchPlan, Plan

KNOWN_FORMATS = {"cifar10": {"channels": 3, "image_size": 32}, "mnist": {"channels": 1, "image_size": 28}}
# Default normalisation by dataset name/format (the usual training-set statistics); other datasets: 0.5/0.25.
KNOWN_STATS = {"cifar10": ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]), "mnist": ([0.1307], [0.3081])}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)


class DatasetParams(Strict):
    """One dataset: where it comes from, how it is split and normalised."""

    source: Literal["download", "local", "folder"] = "download"
    format: Optional[Literal["cifar10", "mnist"]] = None  # for download/local; defaults to the dataset's name
    path: Optional[str] = None  # local: official files (dir or archive); folder: image folder or .tar.gz; download: cache dir
    md5: Optional[str] = None  # folder source: optional checksum of the .tar.gz
    channels: Literal[1, 3] = 3  # folder source: 3 = RGB, 1 = grayscale
    val_size: int = Field(5000, ge=0)
    mean: Optional[list[float]] = None  # default: the dataset's usual statistics (KNOWN_STATS), else 0.5
    std: Optional[list[float]] = None
    on_bad_image: Literal["error", "skip"] = "error"  # folder source: fail naming the file, or skip and count

    @field_validator("std")
    @classmethod
    def _std_positive(cls, v: Optional[list[float]]) -> Optional[list[float]]:
        if v is not None and any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DatasetParams":
        if self.source in ("local", "folder") and not self.path:
            raise ValueError(f"source '{self.source}' needs 'path' (a file or directory)")
        if (self.mean is None) != (self.std is None) or (self.mean and len(self.mean) != len(self.std)):
            raise ValueError("mean and std must be given together, with the same length")
        return self


class OptimizerParams(Strict):
    name: Literal["sgd", "nesterov", "adam", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    # which weights decay: all parameters (PyTorch's usual), or only the kernels of conv / fully connected layers
    # (Keras' kernel_regularizer on the convs, 002; TensorFlow's l2 loss on the FC weights, 000); biases and norms never
    decay_on: Literal["all", "conv", "linear"] = "all"

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError("each beta must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "OptimizerParams":
        if self.name == "nesterov" and self.momentum == 0:
            raise ValueError("nesterov needs a momentum > 0 (with momentum 0 it is plain sgd)")
        return self


class ScheduleParams(Strict):
    """Learning rate as a function of the (fractional) epoch; stepped every iteration."""

    name: Literal["constant", "step", "multistep", "exponential", "cosine"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0)
    warmup_start: float = Field(0.1, gt=0, le=1)  # warm-up starts at lr * warmup_start
    step_size: float = Field(30, gt=0)  # step: epochs between decays
    milestones: list[float] = Field(default_factory=list)  # multistep: epochs where lr *= gamma
    gamma: float = Field(0.1, gt=0, le=1)  # step/multistep factor; exponential: factor per epoch (or per decay_steps)
    # exponential only: decay by gamma every decay_steps optimizer steps, staircase (TensorFlow's exponential_decay
    # with staircase=True, 000: 0.9995 every 10 steps); null: smoothly, gamma per epoch
    decay_steps: Optional[int] = Field(None, gt=0)
    min_lr: float = Field(0.0, ge=0)  # cosine floor

    @field_validator("milestones")
    @classmethod
    def _ascending(cls, v: list[float]) -> list[float]:
        if any(m <= 0 for m in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("milestones must be positive epochs in ascending order")
        return v


class AugmentParams(Strict):
    """Training augmentation, applied per image on whole batches (on the GPU when there is one):
    resize (optional) -> pad -> random crop -> random horizontal flip -> resize to the net's input_size."""

    enabled: bool = True
    resize: Optional[int] = Field(None, gt=0)  # resize the image first, e.g. 256 for AlexNet's 224 crops
    crop_padding: int = Field(4, ge=0)  # pixels of padding on each side before the random crop
    padding_mode: Literal["constant", "reflect", "replicate"] = "reflect"
    crop: Optional[int] = Field(None, gt=0)  # random crop size (default: the image size before padding)
    flip: bool = True
    # per-image photometric jitter after the crop, as TensorFlow's random_brightness / random_contrast (000):
    # brightness adds a delta drawn from [-brightness, brightness] (pixel units, 0..255); contrast scales each
    # image's deviation from its own per-channel mean by a factor drawn from [contrast[0], contrast[1]]. No clipping.
    brightness: float = Field(0.0, ge=0, le=255)
    contrast: Optional[tuple[float, float]] = None

    @field_validator("contrast")
    @classmethod
    def _contrast_range(cls, v: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        if v is not None and not 0 <= v[0] <= v[1]:
            raise ValueError("contrast must be [low, high] with 0 <= low <= high")
        return v


class TrainParams(Strict):
    epochs: int = Field(..., gt=0)
    batch_size: int = Field(128, gt=0)
    optimizer: OptimizerParams = Field(default_factory=OptimizerParams)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)
    augment: AugmentParams = Field(default_factory=AugmentParams)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aux_weight: float = Field(0.3, ge=0)  # loss weight of auxiliary classifiers, when the net has them
    grad_clip: Optional[float] = Field(None, gt=0)
    max_steps_per_epoch: Optional[int] = Field(None, gt=0)  # quick runs: cap the steps of each epoch
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True  # on CUDA
    compile: bool = False  # torch.compile the model (CUDA)
    eval_batch_size: int = Field(500, gt=0)
    log_every: int = Field(50, gt=0)  # steps between progress updates (each is one host sync)
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise-repeatable runs on CPU)
    # which epoch models/VARIANT.pt holds: the best by validation accuracy (netpipe's way), or the last one (the seeds'
    # way, which had no validation split: with data.DATASET.val_size 0 a run trains on every training image as they did)
    keep: Literal["best", "last"] = "best"


class EvalParams(Strict):
    """How test images are cut for single-crop and multi-crop testing (crops are resized to input_size)."""

    resize: Optional[int] = Field(None, gt=0)  # resize the image first (shorter side), e.g. 256 for 224 crops
    pad: int = Field(0, ge=0)  # then pad each side, e.g. 4 for 32x32 crops out of 40x40
    padding_mode: Literal["constant", "reflect", "replicate"] = "reflect"
    crop: int = Field(..., gt=0)  # crop size
    flips: bool = True  # 10-crop (True) or 5-crop (False, e.g. MNIST: a flipped digit is another symbol)
    batch_size: int = Field(250, gt=0)


class Normalize(Strict):
    mean: list[float]
    std: list[float]


class Deviation(Strict):
    """One way a variant departs from its seed document's code: an item of nets.VARIANT.seed_reference.deviations
    (the report tables them per document). Like the rest of seed_reference, it is no part of the config hash."""

    what: str = Field(..., min_length=1)  # a short topic: "training split and kept epoch", "precision", ...
    seed: str = Field(..., min_length=1)  # what the seed's code did
    ours: str = Field(..., min_length=1)  # what netpipe does
    why: str = Field(..., min_length=1)
    cite: Optional[str] = None  # "doc NNN line L", or a file (and commit) of the seed's code


class SeedProtocol(Strict):
    """How the seed's code scored its test images, where netpipe's protocol differs (pipeline/seed_protocol.py)."""

    test_images: Optional[int] = Field(None, gt=0)  # the first N in the official order; null: all
    mode: Literal["eval", "train"] = "eval"  # train: dropout on, BatchNorm with batch statistics
    view: Literal["single", "random_crop"] = "single"
    mean: Literal["params", "test_set"] = "params"
    batch: Optional[int] = Field(None, gt=0)  # images per forward pass (null: eval.batch_size)


class NetParams(Strict):
    arch: str  # a name in the network registry (pipeline/nets)
    options: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of the registered builder
    input_size: int = Field(..., gt=0)  # the network's input resolution; images are resized to it
    normalize: Optional[Normalize] = None  # overrides the dataset's mean/std
    # what the seed document reports (doc, top1, n_test, params, note, comparable) and `deviations`: a list of
    # Deviation items, checked here; the dict itself stays free (the report reads it with .get)
    seed_reference: Optional[dict[str, Any]] = None
    train: TrainParams
    eval: EvalParams

    @field_validator("seed_reference")
    @classmethod
    def _deviations(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None and "protocol" not in v:  # dvc.yaml's evaluate stage reads it for every variant
            raise ValueError("protocol: Field required: how the seed's code scored its test images "
                             "(null where it scored as netpipe does; pipeline/seed_protocol.py)")
        proto = (v or {}).get("protocol")
        if proto is not None:
            try:
                SeedProtocol.model_validate(proto)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(x) for x in err.get("loc", ()))
                raise ValueError(f"protocol{'.' + where if where else ''}: {err['msg']}") from None
        devs = (v or {}).get("deviations")
        if devs is None:
            return v
        if not isinstance(devs, list):
            raise ValueError("deviations must be a list of {what, seed, ours, why, cite} items")
        for i, item in enumerate(devs):
            try:
                Deviation.model_validate(item)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(x) for x in err.get("loc", ()))
                raise ValueError(f"deviations[{i}]{'.' + where if where else ''}: {err['msg']}; each item needs "
                                 "what, seed, ours and why (cite optional)") from None
        return v


# The benchmark backends (bench.py describes each): the one list from which params validation, the bench's run
# order and the report's column order all come. ort_cuda also writes the results of ort_cuda_graph.
BENCH_BACKENDS = ("ort_cuda", "ort_cpu", "torch_eager", "torch_compile", "torch_cuda_graph")
BENCH_ALSO_WRITES = {"ort_cuda": ("ort_cuda_graph",)}
BENCH_RESULT_ORDER = tuple(k for b in BENCH_BACKENDS for k in (b, *BENCH_ALSO_WRITES.get(b, ())))
BenchBackend = Literal[BENCH_BACKENDS]  # type: ignore[valid-type]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class QuickParams(Strict):
    """The quick check: a short run of every stage (CPU-friendly), switched on with enabled: true."""

    enabled: bool = False
    epochs: int = Field(1, gt=0)
    max_steps_per_epoch: int = Field(2, gt=0)
    batch_size: int = Field(8, gt=0)  # at most this global batch (a multiple of distributed.devices x distributed.nodes)
    eval_samples: int = Field(4, gt=0)  # test/validation images used by evaluate/export in quick mode
    bench_batch_sizes: list[int] = Field(default_factory=lambda: [1, 4])
    bench_iterations: int = Field(3, gt=0)
    bench_warmup: int = Field(1, ge=0)
    bench_backends: list[BenchBackend] = Field(default_factory=lambda: ["ort_cuda", "ort_cpu", "torch_eager"])
    bench_precisions: list[Precision] = Field(default_factory=lambda: ["fp32"])


class ExportParams(Strict):
    opset: int = Field(18, ge=7, le=23)
    dynamic_batch: bool = True
    dynamo: bool = False  # False: the TorchScript exporter; True: torch.export-based exporter (needs onnxscript)
    tolerance: float = Field(1e-4, gt=0)  # max abs diff of fp32 logits, onnxruntime vs PyTorch
    parity_samples: int = Field(64, gt=0)  # real test images (plus as many random inputs) for the parity check
    fp16_tolerance: float = Field(5e-2, gt=0)
    fp16_cpu_accuracy_samples: int = Field(1000, gt=0)  # the fp16 file's accuracy on the CPU provider: this many test images
    # the int8 file (pipeline/quantize.py): static QDQ quantization calibrated on training images only
    int8_calibration_images: int = Field(1000, gt=0)  # evenly spread over the training split
    int8_calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    int8_per_channel: bool = True  # weights quantised per output channel
    int8_activations: Literal["qint8", "quint8"] = "quint8"
    int8_reduce_range: bool = True  # 7-bit weights: no u8s8 saturation on CPUs without VNNI (docs/results/cpu-int8)
    int8_max_drop_pp: float = Field(0.5, ge=0)  # int8 top-1 (single or multi-crop) below fp32's by more: marked


class BenchParams(Strict):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 8, 64, 256])
    warmup: int = Field(10, ge=0)
    iterations: int = Field(100, gt=0)
    min_seconds: float = Field(0.0, ge=0)  # keep timing past `iterations` until this much time has passed
    backends: list[BenchBackend] = Field(default_factory=lambda: list(BENCH_BACKENDS))
    precisions: list[Precision] = Field(default_factory=lambda: ["fp32"])
    cpu_threads: Optional[int] = Field(None, gt=0)
    cpu_max_seconds: float = Field(15.0, gt=0)  # a CPU measurement stops after this (with at least 10 timed runs)
    compile_budget_s: float = Field(300.0, ge=0)  # torch_compile: no more batch sizes once compiling took this long

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(b <= 0 for b in v):
            raise ValueError("batch sizes must be a non-empty list of positive integers")
        return v


class DistributedParams(Strict):
    """Where `netpipe train` runs: one device, several devices of one machine, or several machines, through
    torchrun and DistributedDataParallel (docs/distributed.md). A variant's `batch_size` is the GLOBAL batch:
    each of the devices x nodes processes takes batch_size / (devices x nodes) images a step, so a recipe
    (learning rate included) gives the same optimisation on 1 or N devices."""

    devices: int = Field(1, ge=1)  # processes per machine: one per GPU (CPU processes where there is no GPU)
    nodes: int = Field(1, ge=1)  # machines; each runs the same `netpipe train VARIANT`
    sync_batchnorm: bool = True  # BatchNorm statistics over the global batch (SyncBatchNorm; CUDA only)
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    rdzv_endpoint: str = Field("localhost:29400", min_length=1)  # nodes > 1: host:port of the rendezvous (node 0)
    rdzv_id: Optional[str] = None  # nodes > 1: the job id, the same on every node (default: netpipe-VARIANT)

    @property
    def world_size(self) -> int:
        return self.devices * self.nodes


class Params(Strict):
    seed: int = 0
    quick: QuickParams = Field(default_factory=QuickParams)
    data: dict[str, DatasetParams]
    variants: dict[str, str]  # the variants the pipeline builds, each with the dataset it trains on
    # the datasets those variants use, for dvc.yaml's prepare stages (DVC cannot derive a list from a mapping):
    # prepare runs for these only, and they must be exactly the datasets named in `variants`
    datasets: Optional[list[str]] = None
    nets: dict[str, NetParams]
    distributed: DistributedParams = Field(default_factory=DistributedParams)  # devices, nodes (docs/distributed.md)
    export: ExportParams = Field(default_factory=ExportParams)
    bench: BenchParams = Field(default_factory=BenchParams)

    @model_validator(mode="after")
    def _cross(self) -> "Params":
        for name, dataset in self.variants.items():
            if name not in self.nets:
                raise CrossError(["variants", name], f"unknown variant; defined in nets: {', '.join(self.nets)}")
            if dataset not in self.data:
                raise CrossError(["variants", name], f"unknown dataset '{dataset}'; defined in data: {', '.join(self.data)}")
        used = sorted(set(self.variants.values()))
        if self.datasets is not None and sorted(set(self.datasets)) != used:
            raise CrossError(["datasets"], f"must list exactly the datasets that `variants` uses: [{', '.join(used)}] "
                                            f"(got [{', '.join(self.datasets)}])")
        for name, ds in self.data.items():
            fmt = ds.format or name
            if ds.source != "folder" and fmt not in KNOWN_FORMATS:
                raise CrossError(
                    ["data", name, "format"],
                    f"source '{ds.source}' needs a known format ({', '.join(KNOWN_FORMATS)}); use source 'folder' for your own images",
                )
        for name, dataset in self.variants.items():
            net, ds = self.nets[name], self.data[dataset]
            size = self.native_size(dataset)
            if size is not None:
                aug = net.train.augment
                aavail = (aug.resize or size) + 2 * aug.crop_padding
                if aug.crop and aug.crop > aavail:
                    raise CrossError(
                        ["nets", name, "train", "augment", "crop"],
                        f"crop {aug.crop} is larger than the image ({aavail}x{aavail} after resize/pad); allowed: at most {aavail}",
                    )
                avail = (net.eval.resize or size) + 2 * net.eval.pad
                if net.eval.crop > avail:
                    raise CrossError(
                        ["nets", name, "eval", "crop"],
                        f"crop {net.eval.crop} is larger than the image ({avail}x{avail} after resize/pad); allowed: at most {avail}",
                    )
            chans = self.channels(dataset)
            mean, _ = self.normalization(name)
            if len(mean) != chans:
                raise CrossError(["nets", name, "normalize"] if net.normalize else ["data", dataset, "mean"],
                                  f"{len(mean)} mean/std values for {chans}-channel images")
            world = self.distributed.world_size
            if self.quick.enabled and self.quick.batch_size % world:
                raise CrossError(["quick", "batch_size"],
                                  f"quick.batch_size {self.quick.batch_size} must split evenly over distributed.devices x "
                                  f"distributed.nodes = {world} processes; allowed: a multiple of {world}")
            if net.train.batch_size % world:
                raise CrossError(
                    ["nets", name, "train", "batch_size"],
                    f"batch_size {net.train.batch_size} is the global batch and must split evenly over "
                    f"distributed.devices x distributed.nodes = {world} processes; allowed: a multiple of {world}",
                )
        return self

    # ---- derived facts -------------------------------------------------------------------------------------
    def dataset_format(self, dataset: str) -> str:
        ds = self.data[dataset]
        return "folder" if ds.source == "folder" else (ds.format or dataset)

    def channels(self, dataset: str) -> int:
        fmt = self.dataset_format(dataset)
        return KNOWN_FORMATS[fmt]["channels"] if fmt in KNOWN_FORMATS else self.data[dataset].channels

    def native_size(self, dataset: str) -> Optional[int]:
        fmt = self.dataset_format(dataset)
        return KNOWN_FORMATS[fmt]["image_size"] if fmt in KNOWN_FORMATS else None

    def variant(self, name: str) -> NetParams:
        """The effective recipe of a variant: its nets entry, shortened when the quick check is on."""
        if name not in self.nets:
            raise ParamsError(f"unknown variant '{name}'; allowed: {', '.join(self.nets) or '(none defined in nets)'}")
        net = self.nets[name]
        if self.quick.enabled:
            train = net.train.model_copy(update={
                "epochs": min(net.train.epochs, self.quick.epochs),
                "max_steps_per_epoch": min(net.train.max_steps_per_epoch or 10**9, self.quick.max_steps_per_epoch),
                "batch_size": min(net.train.batch_size, self.quick.batch_size),
            })
            net = net.model_copy(update={"train": train})
        return net

    def plan(self, name: str) -> "Plan":
        """Everything a stage needs about variant `name`, resolved once (the quick check applied here)."""
        net = self.variant(name)
        dataset = self.dataset_of(name)
        mean, std = self.normalization(name)
        q, b = self.quick, self.bench
        bench = BenchPlan(
            batch_sizes=tuple(q.bench_batch_sizes if q.enabled else b.batch_sizes),
            iterations=q.bench_iterations if q.enabled else b.iterations,
            warmup=q.bench_warmup if q.enabled else b.warmup,
            # torch_eager fp32 is always measured, first: the reference every speedup is against; then the table's
            backends=("torch_eager",) + tuple(x for x in BENCH_BACKENDS if x != "torch_eager" and x in b.backends
                                              and (not q.enabled or x in q.bench_backends)),
            precisions=("fp32",) + tuple(x for x in dict.fromkeys(b.precisions)
                                         if x != "fp32" and (not q.enabled or x in q.bench_precisions)),
            min_seconds=b.min_seconds, cpu_max_seconds=b.cpu_max_seconds, compile_budget_s=b.compile_budget_s,
            cpu_threads=b.cpu_threads)
        return Plan(variant=name, dataset=dataset, data=self.data[dataset], dataset_format=self.dataset_format(dataset),
                    channels=self.channels(dataset), net=net, recipe=self.nets[name], mean=tuple(mean),
                    std=tuple(std), quick=q.enabled, eval_samples=q.eval_samples if q.enabled else None, bench=bench,
                    export=self.export.model_copy(update={"int8_calibration_images": min(
                        self.export.int8_calibration_images, q.eval_samples)}) if q.enabled else self.export,
                    distributed=self.distributed, seed=self.seed,
                    config_hash=self.variant_hash(name))

    def dataset_of(self, name: str) -> str:
        if name not in self.variants:
            raise ParamsError(
                f"variant '{name}' is not in params 'variants'; allowed: {', '.join(self.variants) or '(none)'}"
            )
        return self.variants[name]

    def normalization(self, name: str) -> tuple[list[float], list[float]]:
        dataset = self.dataset_of(name)
        net, ds = self.nets[name], self.data[dataset]
        if net.normalize:
            return list(net.normalize.mean), list(net.normalize.std)
        if ds.mean is not None:
            return list(ds.mean), list(ds.std)
        key = ds.format or dataset
        if key in KNOWN_STATS:
            return KNOWN_STATS[key]
        c = self.channels(dataset)
        return [0.5] * c, [0.25] * c

    def variant_hash(self, name: str) -> str:
        """Hash of everything that determines a variant's training result (for resume and ONNX metadata)."""
        blob = {  # seed_reference is a note about the seed document: it changes no result
            "seed": self.seed,
            "net": self.variant(name).model_dump(mode="json", exclude={"seed_reference"}),
            "dataset": self.data[self.dataset_of(name)].model_dump(mode="json"),
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def parse(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    if "train" in raw:  # renamed: each variant's recipe is nets.VARIANT.train, so `train` meant two things
        raise ParamsError(f"{source}: train: the top-level `train:` (devices, nodes, backend, ...) is now called "
                          "`distributed:`; rename it (each variant's recipe stays under nets.VARIANT.train)")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(format_error(exc, source, Params)) from None


def load(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run netpipe from the project root, or pass --params)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ParamsError(f"{path}: invalid YAML: nested too deeply") from None
    return parse(raw, str(path))
