"""What each stage writes: one pydantic model per JSON output, shared by the stage that writes it and every reader
(the report; export reads evaluate's metrics). A field is declared here once; a writer that adds a key not declared
here fails (extra="forbid"), and the report reads typed fields, never a key path with a fallback.

  artifacts/train/VARIANT.json    TrainSummary   netpipe train
  artifacts/metrics/VARIANT.json  Metrics        netpipe evaluate
  artifacts/export/VARIANT.json   ExportReport   netpipe export
  artifacts/bench/VARIANT.json    BenchReport    netpipe bench

Beside each, the stage writes artifacts/headline/VARIANT.STAGE.json: its `headline()`, the few numbers DVC shows as
metrics (`dvc metrics show`, `dvc exp show`, `dvc metrics diff`): 7 per variant. The records themselves are
ordinary (uncached) outputs that the report reads.

No torch import: the report and the CLI read these.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from . import fileio
from .errors import NetpipeError

R = TypeVar("R", bound="Record")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Record(_Model):
    """A stage's JSON output."""

    def write(self, path: Union[str, os.PathLike], headline: Union[str, os.PathLike, None] = None) -> dict:
        """Write atomically (and `headline()` to `headline`, after the record); returns what was written."""
        out = self.model_dump(mode="json")
        fileio.write_json(path, out)
        if headline is not None:
            fileio.write_json(headline, self.headline())
        return out

    def headline(self) -> dict[str, float | None]:
        """The stage's numbers for DVC's metrics tables (artifacts/headline/VARIANT.STAGE.json)."""
        raise NotImplementedError

    @classmethod
    def read(cls: type[R], path: Union[str, os.PathLike], what: str = "file") -> R:
        """The record at `path`; a missing, unreadable or outdated file stops with one line naming it."""
        try:
            return cls.model_validate(fileio.read_json(path, what))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "(top level)"
            raise NetpipeError(f"{what} {path} does not match what this netpipe writes ({where}: {err['msg']}; "
                               f"{exc.error_count()} problem(s)): rerun the stage that writes it") from None

    @classmethod
    def read_optional(cls: type[R], path: Union[str, os.PathLike], what: str = "file") -> Optional[R]:
        """The record, or None when the file is missing; an unreadable or outdated one is reported on stderr in one
        line and treated as missing (the report shows n/a for it rather than stopping)."""
        if not os.path.exists(path):
            return None
        try:
            return cls.read(path, what)
        except NetpipeError as exc:
            print(f"warning: {exc}", file=sys.stderr)
            return None


# ---------------------------------------------------------------------------------------------------------
# netpipe train
# ---------------------------------------------------------------------------------------------------------
class SpeedChoice(_Model):
    """pipeline/speed.py's decision (`speed.Speed` is this class): what training runs with and why. Kept in the
    checkpoint (a resumed run reuses it), the CPU speed cache and the training summary."""
    amp: bool  # bf16 autocast
    channels_last: bool
    compile: bool
    reason: Optional[str] = None
    measured: dict[str, float] = {}  # images/s of each combination tried ("fp32", ...)
    bf16_native: Optional[bool] = None  # CPU: oneDNN reports native bf16 matrix instructions

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict) -> "SpeedChoice":
        return cls.model_validate(d)

    @property
    def label(self) -> str:
        parts = ["bf16 autocast" if self.amp else "fp32"] + (["channels-last"] if self.channels_last else [])
        return " + ".join(parts + (["compile"] if self.compile else []))


class TrainSummary(Record):
    variant: str
    arch: str
    dataset: str
    params: int
    epochs: int
    steps_per_epoch: int
    batch_size: int  # global batch
    best_epoch: int  # the epoch whose checkpoint is models/VARIANT.pt (best validation accuracy)
    val_top1: float  # its validation accuracy
    final_train_loss: float
    final_train_acc: float
    train_seconds: float
    images_per_s: Optional[float]
    train_device: str
    world_size: int
    per_device_batch: int
    cuda_visible_devices: Optional[str]
    torch: str
    amp_bf16: bool
    channels_last: bool
    compiled: bool
    speed: SpeedChoice
    quick: bool
    config_hash: str
    code_hash: str
    command: str
    git_commit: Optional[str]

    def headline(self) -> dict[str, float | None]:
        return {"train_minutes": round(self.train_seconds / 60, 2)}


# ---------------------------------------------------------------------------------------------------------
# netpipe evaluate
# ---------------------------------------------------------------------------------------------------------
class Accuracy(_Model):
    """Test accuracies (fractions): single centre crop, and averaged over the crops (5, or 10 with flips)."""
    top1: float
    top5: float
    top1_10crop: float
    top5_10crop: float


class Confusion(_Model):
    classes: list[str]
    rows: str
    columns: str
    matrix: list[list[int]]


class CheckpointRef(_Model):
    epoch: Optional[int]
    config_hash: Optional[str]


class SeedProtocolResult(_Model):
    """Our top-1 under the seed's own scoring protocol (pipeline/seed_protocol.py), or why it is not measured."""
    protocol: str
    measured: bool
    reason: Optional[str]
    top1: Optional[float]
    n_test: Optional[int]


class Metrics(Accuracy, Record):
    variant: str
    arch: str
    dataset: str
    val_top1: Optional[float]
    crops: int
    protocol: str
    n_test: int
    n_val: int
    per_class_top1: dict[str, Optional[float]]
    confusion: Confusion
    eval_seconds: float
    images_per_s: Optional[float]
    device: str
    precision: str
    checkpoint: CheckpointRef
    quick: bool
    command: str
    git_commit: Optional[str]
    seed_protocol: Optional[SeedProtocolResult] = None  # None: the seed scored as netpipe does (or no seed)

    def headline(self) -> dict[str, float | None]:
        return {"top1": self.top1, "top1_10crop": self.top1_10crop, "val_top1": self.val_top1}


# ---------------------------------------------------------------------------------------------------------
# netpipe export
# ---------------------------------------------------------------------------------------------------------
class Parity(_Model):
    max_abs_diff: float
    max_rel_diff: float
    by_provider: dict[str, dict[str, float]]  # provider -> input kind (real, random) -> max |logit difference|
    samples: int
    random_samples: int
    logit_scale: float
    tolerance: float
    check: str


class OnnxAccuracy(_Model):
    onnx: Accuracy
    torch: Accuracy
    diff_pp: Accuracy  # onnx - torch, percentage points
    allowed_pp: float
    n_test: int
    eval_seconds: float


class SubsetAccuracy(Accuracy):
    n_test: int


class Fp16Check(_Model):
    path: str
    bytes: int
    method: str
    tolerance: float
    measured: bool
    reason: Optional[str]
    provider: Optional[str]
    max_abs_diff: Optional[float]
    max_rel_diff: Optional[float] = None
    by_input: Optional[dict[str, Optional[float]]] = None
    within_tolerance: Optional[bool]
    accuracy: Optional[SubsetAccuracy]


class Int8Calibration(_Model):
    images: int
    split: str  # "train": never validation or test images
    method: str
    per_channel: bool
    activations: str
    weights: str


class Int8Check(_Model):
    """The int8 file (pipeline/quantize.py): its accuracy through onnxruntime's CPU provider on the test images,
    with evaluate's protocol, and its drop from the fp32 ONNX file's in percentage points (fp32 - int8)."""
    path: str
    bytes: int
    method: str
    calibration: Int8Calibration
    provider: str
    accuracy: SubsetAccuracy
    drop_pp: Accuracy
    max_drop_pp: float
    within_max_drop: bool
    quantize_seconds: float
    eval_seconds: float


class ExportReport(Record):
    variant: str
    dataset: str
    onnx: str
    onnx_bytes: int
    opset: int
    exporter: str
    dynamic_batch: bool
    providers: list[str]
    parity: Parity
    accuracy: OnnxAccuracy
    fp16: Fp16Check
    int8: Optional[Int8Check] = None  # None: exported before netpipe wrote int8 files
    metadata: dict[str, str]  # the ONNX file's metadata_props (classes left out)
    seconds: float
    quick: bool
    command: str

    def headline(self) -> dict[str, float | None]:
        return {"parity_max_abs_diff": self.parity.max_abs_diff}  # the int8 drop: in the record and the report


# ---------------------------------------------------------------------------------------------------------
# netpipe bench
# ---------------------------------------------------------------------------------------------------------
class Machine(_Model):
    cpu: str
    cpu_cores: Optional[int]
    load_avg_1min: Optional[float]
    torch_threads: int
    ort_threads: Union[int, str]
    gpu: Optional[str]
    gpu_memory_gib: Optional[float]
    cuda_torch: bool
    cuda_onnxruntime: bool
    cuda: Optional[str]
    cudnn: Optional[int]
    tf32: bool
    torch: str
    onnxruntime: str
    onnx: Optional[str]
    numpy: str
    python: str
    platform: str


class MatmulPeak(_Model):
    matmul_flops_per_s: float
    matmul_n: int


class DevicePeak(_Model):
    device: str
    copy_bytes_per_s: float
    copy_bytes: int
    fp32: Optional[MatmulPeak] = None
    fp16: Optional[MatmulPeak] = None
    bf16: Optional[MatmulPeak] = None
    measured: Optional[str] = None  # when (UTC); peaks are measured once per machine (machine.machine_peak)
    load_avg_1min: Optional[float] = None  # the machine's load then (a busy machine's measurement is not cached)
    cached: Optional[bool] = None  # read from the machine's cache, not measured by this bench process


class Peak(_Model):
    method: str
    cpu: DevicePeak
    cuda: Optional[DevicePeak] = None


class ModelStats(_Model):
    flops_per_image: int
    macs_per_image: int
    params: int
    weights_bytes: int
    activation_bytes_per_image: int
    input_shape: list[int]
    output_shape: list[int]
    input_bytes_per_image: int
    output_bytes_per_image: int


class Latency(_Model):
    """One backend, precision and batch size."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    images_per_s: float
    iterations: int
    first_inference_ms: float
    time_capped: bool = False  # stopped at bench.cpu_max_seconds before `iterations` runs
    speedup_vs_torch_eager: Optional[float]  # torch_eager fp32's p50 at this batch / this p50
    floor_ms: Optional[float]  # the least time the device's measured peaks allow (bench.FLOOR_METHOD)
    fraction_of_peak: Optional[float]  # floor_ms / p50_ms
    device: str  # cpu or cuda


class Skipped(_Model):
    backend: str
    precision: str
    reason: str


class BenchReport(Record):
    variant: str
    dataset: str
    quick: bool
    date: str
    machine: Machine
    peak: Peak
    model: ModelStats
    settings: dict[str, Any]
    setup_ms: dict[str, dict[str, float]]  # backend -> precision -> ms before the first inference
    results: dict[str, dict[str, dict[str, Latency]]]  # backend -> precision -> "BATCH" -> latency
    skipped: list[Skipped]
    command: str

    def headline(self) -> dict[str, float | None]:
        """The fastest backend and precision's p50 at batch 1, and the most images/s at the largest batch measured
        (256 at the bench's settings; the record says which batch sizes ran). One key whatever that batch, so DVC's
        tables keep one column for it."""
        runs = [(int(bs), r) for precs in self.results.values() for by_batch in precs.values()
                for bs, r in by_batch.items()]
        b1 = [r.p50_ms for bs, r in runs if bs == 1]
        top = max((bs for bs, _ in runs), default=None)
        out: dict[str, float | None] = {"latency_ms_batch1": min(b1) if b1 else None}
        if top is not None:
            out["images_per_s_largest_batch"] = max(r.images_per_s for bs, r in runs if bs == top)
        return out

