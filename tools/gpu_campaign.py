"""The GPU campaign: every stage of netpipe on a lent GPU in one device call, time-boxed, packed as it goes.

Run through tools/gpu_campaign.sh (which installs the carried wheels first); docs/gpu.md says how. Stages, in order,
each under coreutils `timeout` (SIGTERM, then SIGKILL 15 s later) with at most what the call's budget has left:

  env         versions, the GPU, onnxruntime's providers
  prepare     CIFAR-10 and MNIST from the carried copies
  quick       the quick check (2 steps, a few images) of one variant per seed, train -> evaluate -> export -> bench,
              in a scratch project (campaign/quick/): every CUDA code path once, in parallel
  bench-all   googlenet_cifar's latency on every backend x precision (torch eager/compile/CUDA graph, fp32/bf16/fp16,
              onnxruntime's providers; a missing one recorded with its reason) at the real bench settings, on the
              quick check's weights (latency does not depend on them)
  nccl        the one-GPU NCCL check (tests/test_ddp.py); on a CPU its gloo twin
  first:V     every other recipe for its first epochs in a time box (campaign/first/): per epoch loss,
              validation accuracy and seconds (artifacts/train/V.csv of that project)
  demo        alexnet_thinner_4_short on its whole recipe (campaign/demo/), evaluated, exported and shipped with
              tools/ship_model.py: its fp16 ONNX file comes back as $OUT/pretrained-cifar10.onnx (README "Predict")
  train       googlenet_cifar on its real recipe (003's) in the project itself; stopped by the budget it saves its
              state and the next call on the same warm machine resumes it (models/resume/)
  evaluate, export, bench    googlenet_cifar, once its training has finished

After every stage the results are packed into $OUT (campaign.tar.gz: campaign/ without weights, and
googlenet_cifar's finished stage records under artifacts/; summary.md; campaign.log), so a call killed at its limit
still brings back everything finished. A stage that ended "ok" is not run again: a second call on the warm machine
continues where the first stopped, and on a fresh machine `--resume DIR` (a folder holding a returned
campaign.tar.gz, carried) restores the finished stages first (weights do not travel back: a training that did not
finish starts over there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
C = ROOT / "campaign"  # everything the campaign writes besides the project's own artifacts/ and models/
MAIN = "googlenet_cifar"
DEMO = "alexnet_thinner_4_short"  # trained whole and shipped with the repository (tools/ship_model.py, pretrained/)
# one variant per seed document (000 ... 004) for the quick check of every code path
QUICK = ["alexnet_cifar", "alexnet_torchvision", "alexnet_keras", MAIN, "alexnet_mnist_bn"]
ALL_BACKENDS = ["ort_cuda", "ort_cpu", "torch_eager", "torch_compile", "torch_cuda_graph"]
ALL_PRECISIONS = ["fp32", "fp16", "bf16"]
ORDER = ["quick", "bench-all", "nccl", "first", "demo", "main"]  # the stage groups after env and prepare (--order)
RESERVE_S = 20  # kept back from the budget for the last pack
MIN_STAGE_S = 15  # a stage with less than this left is not started
PART_BYTES = 15 * 2**20  # $OUT files are at most 16 MiB each

# (cap in seconds) per stage, on the GPU and in the rehearsal (CPU, tiny settings)
CAPS = {
    "gpu": {"env": 90, "prepare": 240, "quick": 240, "bench-all": 240, "nccl": 180, "first": 40, "demo": 600, "train": 10**6,
            "evaluate": 150, "export": 300, "bench": 300},
    "rehearse": {"env": 90, "prepare": 300, "quick": 600, "bench-all": 300, "nccl": 300, "first": 60, "demo": 300, "train": 300,
                 "evaluate": 120, "export": 300, "bench": 300},
}

_log_lock = threading.Lock()


# ---- small helpers -----------------------------------------------------------------------------------------
def say(msg: str) -> None:
    line = f"[campaign {time.strftime('%H:%M:%S')}] {msg}"
    with _log_lock:
        print(line, flush=True)
        with open(C / "campaign.log", "a") as fh:
            fh.write(line + "\n")


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def commit() -> str:
    """The code's commit: git here, or the file `--pack` wrote beside the data (the device's copy has no .git)."""
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    f = ROOT / ".carry" / "data" / "netpipe-commit.txt"
    return f.read_text().strip() + " (from .carry)" if f.exists() else "unknown"


class Campaign:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mode = "rehearse" if args.rehearse else "gpu"
        self.caps = CAPS[self.mode]
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget
        self.out = Path(args.out or os.environ.get("OUT") or ROOT / "campaign-out").resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.done: dict = read_json(C / "done.json", {})
        self.py = sys.executable
        self.cuda = False

    # ---- time -------------------------------------------------------------------------------------------------
    def left(self) -> float:
        return self.deadline - time.monotonic() - RESERVE_S

    def box(self, stage: str) -> int:
        kind = stage.split(":")[0]
        cap = self.args.first_box if kind == "first" and self.args.first_box else self.caps[kind]
        return int(min(cap, self.left()))

    # ---- params -------------------------------------------------------------------------------------------------
    def write_params(self, data: Path) -> None:
        """campaign/params.yaml (the project's, with the data where the campaign has it), and the scratch projects'
        (quick: the quick check; bench-all: the quick check with the real bench matrix; first: the real recipes)."""
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        cifar = data / "cifar10-jpeg.tar.gz"
        if not cifar.exists() and (data / "cifar10-jpeg").is_dir():
            cifar = data / "cifar10-jpeg"
        raw["data"]["cifar10"].update({"source": "folder", "path": str(cifar), "md5": None})
        raw["data"]["mnist"].update({"source": "local", "path": str(data / "mnist"), "md5": None})
        rehearse = self.mode == "rehearse"
        main = json.loads(json.dumps(raw))
        main["quick"]["enabled"] = rehearse
        first = json.loads(json.dumps(main))
        quick = json.loads(json.dumps(raw))
        quick["quick"]["enabled"] = True
        bench_all = json.loads(json.dumps(quick))
        b = raw["bench"]
        bench_all["bench"].update({"backends": ALL_BACKENDS, "precisions": ALL_PRECISIONS})
        bench_all["quick"].update({"bench_backends": ALL_BACKENDS, "bench_precisions": ALL_PRECISIONS})
        if rehearse:  # tiny: one batch size, a few runs (torch.compile still compiles once per precision)
            bench_all["quick"].update({"bench_batch_sizes": [1], "bench_iterations": 2, "bench_warmup": 1})
            bench_all["bench"]["compile_budget_s"] = 1.0
        else:
            bench_all["quick"].update({"bench_batch_sizes": b["batch_sizes"], "bench_iterations": b["iterations"],
                                       "bench_warmup": b["warmup"]})
            for p in (bench_all, main):  # onnxruntime's CPU provider on 16 cores: a few seconds per measurement;
                p["bench"]["cpu_max_seconds"] = 3.0  # torch.compile: no new batch size after a minute of compiling
                p["bench"]["compile_budget_s"] = 60.0
        for name, p in {"params.yaml": main, "quick/params.yaml": quick, "quick/params-bench-all.yaml": bench_all,
                        "first/params.yaml": first, "demo/params.yaml": first}.items():
            path = C / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# written by tools/gpu_campaign.py from params.yaml\n" + yaml.safe_dump(p, sort_keys=False))
        for scratch in ("quick", "first", "demo"):  # the scratch projects read the project's prepared data
            link = C / scratch / "data"
            if not link.exists():
                link.symlink_to(ROOT / "data")

    # ---- running ------------------------------------------------------------------------------------------------
    def run(self, name: str, cmd: list[str], cwd: Path, timeout: int) -> dict:
        """One command under coreutils `timeout`; its output to campaign/logs/NAME.log and this log."""
        log = C / "logs" / f"{name.replace(':', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        t = time.monotonic()
        with open(log, "w") as fh:
            fh.write(f"$ (cd {cwd.relative_to(ROOT) if cwd != ROOT else '.'} && {' '.join(cmd)})  # timeout {timeout}s\n")
            fh.flush()
            proc = subprocess.Popen(["timeout", "-k", "15", str(timeout), *cmd], cwd=cwd, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                if not self.args.quiet:
                    print(f"  {name}| {line.rstrip()[-300:]}", flush=True)
            rc = proc.wait()
        seconds = round(time.monotonic() - t, 1)
        tail = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()][-1:]
        return {"rc": rc, "seconds": seconds, "timed_out": rc in (124, 137), "log": str(log.relative_to(ROOT)),
                "last_line": tail[0][-300:] if tail else ""}

    def netpipe(self, *args: str, params: str) -> list[str]:
        return [self.py, "-m", "pipeline", *args, "-p", params]

    def stage(self, name: str, fn) -> None:
        """Run stage `name` (fn(timeout) -> record) unless it is done or the budget is spent; record and pack."""
        if self.done.get(name, {}).get("status") == "ok":
            say(f"{name}: done in an earlier call, skipped")
            return
        if name in self.args.skip:
            self.record(name, {"status": "skipped", "note": "--skip"})
            return
        timeout = self.box(name)
        if self.left() < MIN_STAGE_S:
            self.record(name, {"status": "not run", "note": f"budget spent ({self.left() + RESERVE_S:.0f} s left)"})
            return
        say(f"{name}: start (time box {timeout} s, {self.left():.0f} s of the budget left)")
        rec = fn(timeout)
        self.record(name, rec)

    def record(self, name: str, rec: dict) -> None:
        rec.setdefault("status", "ok" if rec.get("rc") == 0 else "timeout" if rec.get("timed_out") else "failed")
        rec["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.done[name] = rec
        write_json(C / "done.json", self.done)
        say(f"{name}: {rec['status']}" + (f" in {rec['seconds']} s" if "seconds" in rec else "")
            + (f" ({rec['note']})" if rec.get("note") else "")
            + (f" -- {rec['last_line']}" if rec["status"] not in ("ok", "not run", "skipped") and rec.get("last_line") else ""))
        self.pack()

    # ---- the stages ---------------------------------------------------------------------------------------------
    def env_stage(self, timeout: int) -> dict:
        code = ("import json, os, sys, platform, torch, torchvision, onnx\n"
                "import onnxruntime as ort\n"
                "cuda = torch.cuda.is_available()\n"
                "print(json.dumps({'python': sys.version.split()[0], 'torch': torch.__version__,"
                " 'torch_cuda': torch.version.cuda, 'torchvision': torchvision.__version__, 'onnx': onnx.__version__,"
                " 'onnxruntime': ort.__version__, 'ort_providers': ort.get_available_providers(), 'cuda': cuda,"
                " 'gpu': torch.cuda.get_device_name(0) if cuda else None,"
                " 'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,"
                " 'cpu': platform.processor() or platform.machine(), 'cpu_count': os.cpu_count()}))\n")
        r = self.run("env", [self.py, "-c", code], ROOT, timeout)
        if r["rc"] == 0:
            info = json.loads((ROOT / r["log"]).read_text().splitlines()[-1])
            write_json(C / "env.json", info)
            r["note"] = f"{info['gpu'] or 'no GPU'}; torch {info['torch']}, onnxruntime {info['onnxruntime']} " \
                        f"{'+CUDA' if 'CUDAExecutionProvider' in info['ort_providers'] else '(CPU build)'}"
        return r

    def chain(self, tag: str, v: str, stages: tuple[str, ...], cwd: Path, t0: float, timeout: int) -> dict:
        """`netpipe STAGE V` for each of `stages` in the scratch project `cwd` (its params.yaml), each with what is
        left of `timeout` since t0; stops at the first that fails and where the box is spent: {stage: its record}."""
        rec = {}
        for st in stages:
            left = int(timeout - (time.monotonic() - t0))
            if left < MIN_STAGE_S:
                rec[st] = {"status": "not run", "note": "time box spent"}
                break
            r = self.run(f"{tag}-{st}", self.netpipe(st, v, params="params.yaml"), cwd, left)
            r["status"] = "ok" if r["rc"] == 0 else "timeout" if r["timed_out"] else "failed"
            rec[st] = r
            if r["rc"] != 0:
                break
        return rec

    def quick_stage(self, timeout: int) -> dict:
        t = time.monotonic()
        with ThreadPoolExecutor(self.args.jobs) as pool:
            chains = dict(zip(QUICK, pool.map(
                lambda v: self.chain(f"quick-{v}", v, ("train", "evaluate", "export", "bench"), C / "quick", t,
                                     timeout), QUICK)))
        bad = [f"{v} {st}: {r['status']}" for v, rec in chains.items() for st, r in rec.items() if r["status"] != "ok"]
        return {"rc": 0 if not bad else 1, "seconds": round(time.monotonic() - t, 1), "chains": chains,
                "note": "; ".join(bad) or f"{len(QUICK)} variants, every stage"}

    def bench_all_stage(self, timeout: int) -> dict:
        cwd = C / "quick"
        if not (cwd / "models" / f"{MAIN}.onnx").exists():
            return {"status": "not run", "note": f"the quick check did not export {MAIN}"}
        r = self.run("bench-all", self.netpipe("bench", MAIN, params="params-bench-all.yaml"), cwd, timeout)
        if r["rc"] == 0:
            shutil.copy(cwd / "artifacts" / "bench" / f"{MAIN}.json", C / f"bench-all-{MAIN}.json")
        return r

    def nccl_stage(self, timeout: int) -> dict:
        test = ("tests/test_ddp.py::test_gpu_ddp_one_process_matches_plain_and_overhead" if self.cuda else
                "tests/test_ddp.py::test_ddp_path_with_one_process_is_the_single_device_result")
        r = self.run("nccl", [self.py, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:randomly", test],
                     ROOT, timeout)
        r["note"] = ("NCCL, one GPU" if self.cuda else "no GPU: its CPU twin (gloo)") + ": " + test.split("::")[1]
        return r

    def first_stage(self, v: str, timeout: int) -> dict:
        cwd = C / "first"
        for f in (cwd / "models" / "resume").glob(f"{v}*"):  # its first epochs, not a resumed run
            f.unlink()
        (cwd / "artifacts" / "train" / f"{v}.csv").unlink(missing_ok=True)
        r = self.run(f"first:{v}", self.netpipe("train", v, params="params.yaml"), cwd, timeout)
        curve = cwd / "artifacts" / "train" / f"{v}.csv"
        rows = list(csv.DictReader(curve.open())) if curve.exists() else []
        (C / "first-epochs").mkdir(exist_ok=True)
        if curve.exists():
            shutil.copy(curve, C / "first-epochs" / f"{v}.csv")
        ok = r["rc"] == 0 or (r["timed_out"] and r["rc"] == 124)  # the time box ends it: as planned
        r.update({"status": "ok" if ok else "failed", "epochs": len(rows),
                  "note": f"{len(rows)} epoch(s) in the box" + ("" if r["rc"] == 0 else " (stopped by the time box)")})
        return r

    def demo_stage(self, timeout: int) -> dict:
        """DEMO on its whole recipe in campaign/demo/: train, evaluate, export, then tools/ship_model.py (its fp16
        ONNX file comes back as $OUT/pretrained-DATASET.onnx, its metadata in the archive)."""
        cwd, t = C / "demo", time.monotonic()
        for st, r in self.chain("demo", DEMO, ("train", "evaluate", "export"), cwd, t, timeout).items():
            if r["status"] == "not run":
                return {"status": "stopped", "seconds": round(time.monotonic() - t, 1), "note": f"time box spent before {st}"}
            if r["status"] != "ok":
                r.update({"status": "stopped" if r["timed_out"] else "failed", "note": f"{DEMO} {st}"})
                return r
        r = self.run("demo-ship", [self.py, str(ROOT / "tools" / "ship_model.py"), DEMO, "--out", "pretrained"], cwd,
                     max(MIN_STAGE_S, int(timeout - (time.monotonic() - t))))
        r["seconds"] = round(time.monotonic() - t, 1)
        r["note"] = r["last_line"] if r["rc"] == 0 else f"{DEMO} ship"
        return r

    def train_stage(self, timeout: int) -> dict:
        r = self.run("train", self.netpipe("train", MAIN, params="campaign/params.yaml"), ROOT, timeout)
        curve = ROOT / "artifacts" / "train" / f"{MAIN}.csv"
        rows = list(csv.DictReader(curve.open())) if curve.exists() else []
        if curve.exists():
            shutil.copy(curve, C / f"train-{MAIN}.csv")
        if r["rc"] != 0 and r["timed_out"]:
            r.update({"status": "stopped", "note": f"{len(rows)} epoch(s) so far; the next call on this warm machine "
                                                   "resumes it (models/resume/)"})
        else:
            r["note"] = f"{len(rows)} epoch(s)"
        return r

    def main_stage(self, st: str, timeout: int) -> dict:
        if self.done.get("train", {}).get("status") != "ok":
            return {"status": "not run", "note": f"{MAIN}'s training has not finished"}
        return self.run(st, self.netpipe(st, MAIN, params="campaign/params.yaml"), ROOT, timeout)

    # ---- packing --------------------------------------------------------------------------------------------------
    def pack(self) -> None:
        """$OUT/campaign.tar.gz (split into 15 MiB parts if larger), summary.md and campaign.log."""
        (C / "summary.md").write_text(summary(self))
        keep_main = [ROOT / "artifacts" / d / f"{MAIN}.{ext}" for d, ext in
                     (("train", "json"), ("train", "csv"), ("metrics", "json"), ("export", "json"), ("bench", "json"),
                      ("confusion", "png"))]
        finished = self.done.get("train", {}).get("status") == "ok"

        def skip_heavy(info: tarfile.TarInfo):
            parts = Path(info.name).parts
            if len(parts) > 2 and parts[1] in ("quick", "first", "demo") and parts[2] in ("models", "data"):
                return None
            if info.name.endswith(".onnx"):  # the shipped model travels as a file of its own
                return None
            return None if info.name.endswith(".tmp") else info

        tmp = self.out / ".campaign.tar.gz.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(C, arcname="campaign", filter=skip_heavy)
            for f in keep_main:
                if finished and f.exists():
                    tar.add(f, arcname=str(f.relative_to(ROOT)))
        for old in self.out.glob("campaign.tar.gz*"):
            old.unlink()
        if tmp.stat().st_size <= PART_BYTES:
            tmp.replace(self.out / "campaign.tar.gz")
        else:  # join with: cat campaign.tar.gz.part* > campaign.tar.gz
            with open(tmp, "rb") as fh:
                for i, chunk in enumerate(iter(lambda: fh.read(PART_BYTES), b"")):
                    (self.out / f"campaign.tar.gz.part{i}").write_bytes(chunk)
            tmp.unlink()
        for f in (C / "demo" / "pretrained").glob("*.onnx"):
            shutil.copy(f, self.out / f"pretrained-{f.name}")
        shutil.copy(C / "summary.md", self.out / "summary.md")
        with open(C / "campaign.log", "rb") as src, open(self.out / "campaign.log", "wb") as dst:
            src.seek(max(0, (C / "campaign.log").stat().st_size - PART_BYTES))
            shutil.copyfileobj(src, dst)

    # ---- the whole campaign -------------------------------------------------------------------------------------
    def go(self) -> int:
        say(f"{self.mode}: budget {self.args.budget} s, results to {self.out}, commit {commit()}")
        info = {"command": " ".join(["bash tools/gpu_campaign.sh", *sys.argv[1:]]), "commit": commit(),
                "mode": self.mode, "budget_s": self.args.budget, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        calls = read_json(C / "calls.json", [])
        write_json(C / "calls.json", calls + [info])
        self.write_params(Path(self.args.data).resolve())
        self.stage("env", self.env_stage)
        self.cuda = bool((read_json(C / "env.json") or {}).get("cuda"))
        if self.mode == "gpu" and not self.cuda:
            say("no CUDA GPU here: run --rehearse on a CPU")
            return 2
        prepared = [ROOT / "data" / "prepared" / f"{ds}.npz" for ds in ("cifar10", "mnist")]
        if not all(f.exists() for f in prepared):  # a fresh machine: its data is prepared again, whatever was done
            self.done.pop("prepare", None)
        self.stage("prepare", lambda t: self.run("prepare", self.netpipe("prepare", "cifar10", "mnist",
                                                                           params="campaign/params.yaml"), ROOT, t))
        if self.done.get("prepare", {}).get("status") != "ok":
            say("prepare did not finish: nothing else can run")
            return 1
        variants = list(yaml.safe_load((ROOT / "params.yaml").read_text())["variants"])
        groups = {"quick": [("quick", self.quick_stage)], "bench-all": [("bench-all", self.bench_all_stage)],
                  "nccl": [("nccl", self.nccl_stage)],
                  "first": [(f"first:{v}", lambda t, v=v: self.first_stage(v, t)) for v in variants if v != MAIN],
                  "demo": [("demo", self.demo_stage)],
                  "main": [("train", self.train_stage)] + [(st, lambda t, st=st: self.main_stage(st, t))
                                                           for st in ("evaluate", "export", "bench")]}
        for group in self.args.order:
            for name, fn in groups[group]:
                self.stage(name, fn)
        bad = {k: r["status"] for k, r in self.done.items() if r["status"] not in ("ok", "not run", "stopped", "skipped")}
        say(f"finished in {time.monotonic() - self.t0:.0f} s: "
            + (f"FAILED {bad}" if bad else "no stage failed") + f"; {self.out}/summary.md")
        return 1 if bad else 0


# ---- summary.md -------------------------------------------------------------------------------------------------
def _fmt(x, nd=4) -> str:
    try:
        return f"{float(x):.{nd}f}"
    except (TypeError, ValueError):
        return "n/a"


def summary(c: Campaign) -> str:
    env = read_json(C / "env.json") or {}
    calls = read_json(C / "calls.json", [])
    lines = ["# GPU campaign" + (" (REHEARSAL on a CPU, tiny settings: no figure here means anything)"
                                 if c.mode == "rehearse" else ""), "",
             f"Machine: {env.get('gpu') or 'no GPU'} ({env.get('gpu_memory_gib')} GiB), {env.get('cpu_count')} CPU cores; "
             f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), torchvision "
             f"{env.get('torchvision')}, onnx {env.get('onnx')}, onnxruntime {env.get('onnxruntime')} "
             f"{env.get('ort_providers')}.", ""]
    for i, call in enumerate(calls, 1):
        lines.append(f"Call {i}: `{call['command']}` at {call['started']}, commit {call['commit']}, budget {call['budget_s']} s.")
    lines += ["", "| stage | status | seconds | note |", "|---|---|---|---|"]
    for name, r in c.done.items():
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', '')} | {str(r.get('note', '')).replace('|', '/')} |")
    lines += ["", "Logs: campaign/logs/STAGE.log; every stage's command is the first line of its log."]

    rows = []
    params = read_json_yaml(C / "first" / "params.yaml")
    for f in sorted((C / "first-epochs").glob("*.csv")) + sorted(C.glob("train-*.csv")):
        v = f.stem.removeprefix("train-")
        n = train_images(params, v) if params else None
        for row in csv.DictReader(f.open()):
            ips = n / float(row["seconds"]) if n and float(row["seconds"]) > 0 else None
            rows.append(f"| {v} | {row['epoch']} | {_fmt(row['train_loss'])} | {_fmt(row['train_acc'])} | "
                        f"{_fmt(row['val_acc'])} | {_fmt(row['lr'], 5)} | {_fmt(row['seconds'], 1)} | {_fmt(ips, 0)} |")
    if rows:
        lines += ["", "## Training, epoch by epoch (first epochs in a time box; googlenet_cifar on its whole recipe)", "",
                  "Epoch seconds include the validation pass; images/s is the epoch's training images over them.", "",
                  "| variant | epoch | train loss | train acc | val acc | lr | seconds | images/s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += rows

    bench = read_json(C / f"bench-all-{MAIN}.json")
    if bench:
        lines += ["", f"## {MAIN}: latency on every backend (quick-check weights; real bench settings)", "",
                  "| backend | precision | batch | p50 ms | images/s |", "|---|---|---|---|---|"]
        for be, precs in bench.get("results", {}).items():
            for prec, by_batch in precs.items():
                for bs, r in by_batch.items():
                    lines.append(f"| {be} | {prec} | {bs} | {_fmt(r.get('p50_ms'), 3)} | {_fmt(r.get('images_per_s'), 0)} |")
        for s in bench.get("skipped", []):
            lines.append(f"| {s['backend']} | {s['precision']} | not measured | {s['reason'][:160].replace('|', '/')} | |")
    nccl = C / "logs" / "nccl.log"
    if nccl.exists():
        got = [x for x in nccl.read_text(errors="replace").splitlines() if x.startswith("GPU: plain") or " passed" in x
               or " failed" in x]
        if got:
            lines += ["", "## NCCL check", ""] + [f"    {x}" for x in got]
    return "\n".join(lines) + "\n"


def read_json_yaml(path: Path) -> dict | None:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def train_images(p: dict, v: str) -> int | None:
    """Training images in one epoch of V under params `p` (train.py's geometry: whole batches only)."""
    try:
        ds = p["variants"][v]
        n = {"cifar10": 50000, "mnist": 60000}[ds] - p["data"][ds]["val_size"]
        tp = p["nets"][v]["train"]
        bs, steps = tp["batch_size"], None
        if p["quick"]["enabled"]:
            bs, steps = min(bs, p["quick"]["batch_size"]), p["quick"]["max_steps_per_epoch"]
        steps = min(x for x in (n // bs, tp.get("max_steps_per_epoch"), steps) if x)
        return steps * bs
    except (KeyError, TypeError, ValueError):
        return None


def restore(src: Path) -> None:
    """Unpack a returned campaign (campaign.tar.gz or its parts) over this project: the finished stages are skipped."""
    parts = sorted(src.glob("campaign.tar.gz.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    tgz = src / "campaign.tar.gz"
    if parts and not tgz.exists():
        with open(tgz, "wb") as out:
            for p in parts:
                out.write(p.read_bytes())
    with tarfile.open(tgz) as tar:
        tar.extractall(ROOT, filter="data")
    print(f"[campaign] restored {tgz}: {len(read_json(C / 'done.json', {}))} stage records", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/gpu_campaign.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rehearse", action="store_true", help="on a CPU with tiny settings (the quick check everywhere)")
    ap.add_argument("--budget", type=int, default=None, help="seconds this call may take (default: 500; rehearse: 1500)")
    ap.add_argument("--data", default=None, help="folder with cifar10-jpeg.tar.gz and mnist/ "
                    "(default: .carry/data if there, else ../shared/data)")
    ap.add_argument("--out", default=None, help="where the packed results go (default: $OUT, else ./campaign-out)")
    ap.add_argument("--resume", default=None, help="folder holding a returned campaign.tar.gz (or its parts)")
    ap.add_argument("--fresh", action="store_true", help="forget the finished stages of earlier calls")
    ap.add_argument("--skip", action="append", default=[], help="a stage not to run (repeatable)")
    ap.add_argument("--order", default=",".join(ORDER), help=f"the stage groups to run, in this order (default: "
                    f"{','.join(ORDER)}; env and prepare always run first)")
    ap.add_argument("--first-box", type=int, default=None, help="seconds per first:V run (default: 30; rehearse: 60)")
    ap.add_argument("--jobs", type=int, default=None, help="quick-check chains at once (default: 5; rehearse: 1)")
    ap.add_argument("--quiet", action="store_true", help="stages' output to their logs only")
    args = ap.parse_args(argv)
    args.order = [g.strip() for g in args.order.split(",") if g.strip()]
    if unknown := [g for g in args.order if g not in ORDER]:
        ap.error(f"--order: unknown stage group(s) {unknown}; known: {', '.join(ORDER)}")
    args.budget = args.budget or (1500 if args.rehearse else 500)
    args.jobs = args.jobs or (1 if args.rehearse else len(QUICK))
    if args.data is None:
        args.data = str(ROOT / ".carry" / "data") if (ROOT / ".carry" / "data").is_dir() else str(ROOT.parent / "shared" / "data")
    if not (Path(args.data) / "mnist").is_dir():
        print(f"gpu_campaign: no data in {args.data} (cifar10-jpeg.tar.gz and mnist/): run --pack and carry .carry/data",
              file=sys.stderr)
        return 2
    if args.fresh and C.exists():
        shutil.rmtree(C)
    C.mkdir(exist_ok=True)
    if args.resume:
        restore(Path(args.resume))
    return Campaign(args).go()


if __name__ == "__main__":
    sys.exit(main())
