"""How far 2 processes land from 1 process (the DDP equivalence test, tests/test_ddp.py), with correct gradient
averaging and with two broken ones (tests/hooks: "local", each rank its own gradient; "half", the averaged
gradient halved), for a few (epochs, learning rate) settings: what the test's tolerances and margins rest on.

    python docs/results/ddp-margin/measure.py EPOCHS:LR [EPOCHS:LR ...]  > docs/results/ddp-margin/measured.txt
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests import test_ddp as T  # noqa: E402  (the test's own project, commands and measures)
from tests.datagen import make_cifar_batches  # noqa: E402


def main(settings: list[str]) -> None:
    from pipeline.speed import cpu_model

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# command: python {' '.join(sys.argv)}")
    print(f"# commit: {commit}, machine: {cpu_model()}, {platform.machine()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = tmp / "template"
        make_cifar_batches(template / "raw", n_train=160, n_test=20)
        (template / "params.yaml").write_text(yaml.safe_dump(T._params(template, devices=1), sort_keys=False))
        assert T._cmd(template, "prepare").returncode == 0
        for setting in settings:
            epochs, lr = int(setting.split(":")[0]), float(setting.split(":")[1])
            runs = {}
            for name, devices, broken in (("one", 1, None), ("two", 2, None), ("half", 2, "half"), ("local", 2, "local")):
                root = T._project(template, tmp / f"{setting}-{name}", devices=devices, epochs=epochs, lr=lr)
                env = {**T._env(root), **({"NETPIPE_TEST_DDP_GRADIENT": broken} if broken else {})}
                r = subprocess.run([sys.executable, "-m", "pipeline", "train", T.VARIANT], cwd=root, env=env,
                                   capture_output=True, text=True, timeout=600)
                assert r.returncode == 0, r.stderr[-2000:]
                runs[name] = root
            out = {name: T._differences(runs["one"], runs[name], epochs) for name in ("two", "half", "local")}
            print(json.dumps({"epochs": epochs, "lr": lr, **out}))
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
