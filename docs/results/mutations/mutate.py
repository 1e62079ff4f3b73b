"""Break the code on purpose, one slip at a time, and show the test that guards it failing; then restore the file.

    python docs/results/mutations/mutate.py [NAME ...]      # all slips by default; writes mutations.log beside it

Each slip is (file, exact text, replacement, tests). The file is restored byte for byte after each run (also on
Ctrl-C), and checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LOG = Path(__file__).with_name("mutations.log")

SPEED_ROW = ("""             _seconds(v["train_speed"]["epoch_seconds"]),\n"""
             """             NA if v["train_speed"]["images_per_s"] is None else f"{v['train_speed']['images_per_s']:,.0f}",""")

SLIPS = {
    "lr-one-step-late": ("pipeline/train.py", "            loss, logits = _step(r, xb, yb)\n            r.sched.step()\n",
                         "            r.sched.step()\n            loss, logits = _step(r, xb, yb)\n",
                         "tests/test_train_loop.py::test_every_step_uses_the_scheduled_learning_rate_in_every_group"),
    "lr-first-group-only": ("pipeline/train.py", "lambda k: lr_factor(s, k / sched_steps, full_epochs, base, sched_steps))",
                            "[lambda k: lr_factor(s, k / sched_steps, full_epochs, base, sched_steps), lambda k: 1.0])",
                            "tests/test_train_loop.py::test_every_step_uses_the_scheduled_learning_rate_in_every_group"),
    "decay-on-other-layer-type": ("pipeline/train.py",
                                  'kind = nn.modules.conv._ConvNd if decay_on == "conv" else nn.Linear',
                                  'kind = nn.Linear if decay_on == "conv" else nn.modules.conv._ConvNd',
                                  "tests/test_train_loop.py -k weight_decay_reaches"),
    "decay-on-biases-too": ("pipeline/train.py",
                            "decay = {id(m.weight) for m in model.modules() if isinstance(m, kind)}",
                            "decay = {id(q) for m in model.modules() if isinstance(m, kind) for q in m.parameters()}",
                            "tests/test_train_loop.py -k weight_decay_reaches"),
    "optimizer-ignores-groups": ("pipeline/train.py",
                                 "return torch.optim.SGD(groups, lr=o.lr,",
                                 "return torch.optim.SGD(model.parameters(), weight_decay=o.weight_decay, lr=o.lr,",
                                 "tests/test_train_loop.py -k weight_decay_reaches"),
    "train-mode-not-restored": ("pipeline/train.py", "    r.model.train()\n", "\n",
                                "tests/test_train_loop.py::test_validation_in_eval_mode_chooses_and_saves_the_best_epoch"),
    "validate-in-train-mode": ("pipeline/train.py", "    r.model.eval()\n", "\n",
                               "tests/test_train_loop.py::test_validation_in_eval_mode_chooses_and_saves_the_best_epoch"),
    "best-ties-to-later-epoch": ("pipeline/train.py", "if val_acc > state.best_val:", "if val_acc >= state.best_val:",
                                 "tests/test_train_loop.py::test_validation_in_eval_mode_chooses_and_saves_the_best_epoch"),
    "best-is-last-epoch": ("pipeline/train.py", "if val_acc > state.best_val:", "if True:",
                           "tests/test_train_loop.py::test_validation_in_eval_mode_chooses_and_saves_the_best_epoch"),
    "ddp-gradient-halved": ("pipeline/train.py", "    loss.backward()  # DistributedDataParallel averages",
                            "    (loss / r.d.world_size).backward()  # DistributedDataParallel averages",
                            "tests/test_ddp.py::test_two_processes_match_one_process"),
    "report-accuracy-columns-swapped": ("pipeline/report.py", "_pct(v[\"top1\"]), multi, seed_txt,",
                                        "multi, _pct(v[\"top1\"]), seed_txt,",
                                        "tests/test_report_cells.py::test_results_table"),
    "report-val-for-test-top1": ("pipeline/report.py", "_pct(v[\"top1\"]), multi, seed_txt,",
                                 "_pct(v[\"val_top1\"]), multi, seed_txt,",
                                 "tests/test_report_cells.py::test_results_table"),
    "report-speed-columns-swapped": ("pipeline/report.py", SPEED_ROW, "\n".join(SPEED_ROW.split("\n")[::-1]),
                                     "tests/test_report_cells.py::test_training_speed_table"),
    "eval-crops-on-the-device": ("pipeline/evaluate.py", "views_on_cpu=True)", "views_on_cpu=False)",
                                 "tests/test_evaluate_export.py -k cut_on_the_cpu"),
    "cuda-without-asking-onnxruntime": ("pipeline/runtime.py",
                                        'return "CUDAExecutionProvider" in ort.get_available_providers() and cuda_libraries_load()',
                                        "return cuda_libraries_load()", "tests/test_runtime.py"),
}


def run(name: str) -> str:
    path, old, new, tests = SLIPS[name]
    f = ROOT / path
    text = f.read_text()
    assert text.count(old) == 1, f"{name}: the text to break is not in {path} exactly once"
    try:
        f.write_text(text.replace(old, new))
        r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-x",
                            *tests.split()], cwd=ROOT, capture_output=True, text=True)
    finally:
        f.write_text(text)
    assert f.read_text() == text
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith(("E   ", "FAILED"))]
    verdict = "CAUGHT" if r.returncode == 1 else f"NOT CAUGHT (pytest exit {r.returncode})"
    return "\n".join([f"## {name}: {verdict}", f"slip: {path}: {old.strip()!r} -> {new.strip()!r}",
                      f"test: {tests}", *fails[:3], ""])


if __name__ == "__main__":
    names = sys.argv[1:] or list(SLIPS)
    out = [run(n) for n in names]
    LOG.write_text("\n".join(out))
    print("\n".join(out))
