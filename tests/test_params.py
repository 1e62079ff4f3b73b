"""params.yaml validation: every bad value stops with one line naming the key, exit code 2, no traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import params
from pipeline.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repo_params_valid():
    p = params.load(ROOT / "params.yaml")
    assert set(p.variants) <= set(p.nets)
    assert p.variant("googlenet_cifar").train.optimizer.lr == 0.1
    # YAML merge keys: a derived variant changes only what it overrides
    assert p.nets["alexnet_cifar_adam"].train.optimizer.name == "adam"
    assert p.nets["alexnet_cifar_adam"].train.epochs == p.nets["alexnet_cifar"].train.epochs


def _mutate(path: str, value, delete: bool = False) -> dict:
    raw = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = raw
    for k in parents:
        node = node[k]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize("path,value,expect", [
    ("nets.googlenet_cifar.train.epochs", -1, r"nets\.googlenet_cifar\.train\.epochs: Input should be greater than 0 \(got -1\)"),
    ("nets.googlenet_cifar.train.epochs", "many", r"nets\.googlenet_cifar\.train\.epochs: .*integer"),
    ("nets.googlenet_cifar.train.epohcs", 3, r"nets\.googlenet_cifar\.train\.epohcs: unknown key; allowed: epochs, batch_size"),
    ("data.cifar10.sauce", "x", r"data\.cifar10\.sauce: unknown key; allowed: source, format, path"),
    ("bogus", 1, r"bogus: unknown key; allowed: seed, quick, data, variants, datasets, nets"),
    ("nets.googlenet_cifar.train.optimizer.name", "rmsprop", r"optimizer\.name: Input should be 'sgd', 'nesterov', 'adam' or 'adamw'"),
    ("nets.googlenet_cifar.eval.crop", 64, r"nets\.googlenet_cifar\.eval\.crop: crop 64 is larger than the image \(40x40 after resize/pad\); allowed: at most 40"),
    ("variants.resnet50", "cifar10", r"variants\.resnet50: unknown variant; defined in nets: alexnet_cifar"),
    ("variants.googlenet_cifar", "imagenet", r"variants\.googlenet_cifar: unknown dataset 'imagenet'"),
    ("data.cifar10.std", [0.2, 0.0, 0.2], r"data\.cifar10\.std: every std must be > 0"),
    ("data.mnist.source", "local", r"data\.mnist: source 'local' needs 'path'"),
    ("bench.batch_sizes", [], r"bench\.batch_sizes: batch sizes must be a non-empty list"),
    # values torch itself would refuse with a traceback at the first step
    ("nets.alexnet_keras.train.optimizer.momentum", 0.0, r"nets\.alexnet_keras\.train\.optimizer: .*nesterov needs a momentum > 0"),
    ("nets.alexnet_cifar_adam.train.optimizer.betas", [0.9, 1.5], r"nets\.alexnet_cifar_adam\.train\.optimizer\.betas: .*each beta must be in \[0, 1\)"),
    ("nets.alexnet_keras.train.schedule.milestones", [200, 100], r"nets\.alexnet_keras\.train\.schedule\.milestones: .*ascending order"),
])
def test_bad_values_name_the_key(path, value, expect):
    with pytest.raises(ParamsError, match=expect) as info:
        params.parse(_mutate(path, value))
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_one_line_data_switch_keeps_normalisation():
    raw = copy.deepcopy(BASE)
    raw["data"]["cifar10"] = {"source": "folder", "path": "../shared/data/cifar10-jpeg.tar.gz"}
    raw["data"]["mnist"] = {"source": "local", "path": "../shared/data/mnist"}
    p = params.parse(raw)
    assert p.normalization("googlenet_cifar") == params.KNOWN_STATS["cifar10"]
    assert p.normalization("alexnet_mnist") == params.KNOWN_STATS["mnist"]
    assert p.channels("alexnet_mnist" and "mnist") == 1


def test_missing_required_key():
    with pytest.raises(ParamsError, match=r"nets\.alexnet_mnist\.train\.epochs: required key is missing"):
        params.parse(_mutate("nets.alexnet_mnist.train.epochs", None, delete=True))


def test_unknown_variant_on_command():
    p = params.parse(BASE)
    with pytest.raises(ParamsError, match="variant 'nope' is not in params 'variants'; allowed: alexnet_cifar"):
        p.dataset_of("nope")


def test_quick_mode_shortens_recipe():
    raw = copy.deepcopy(BASE)
    raw["quick"]["enabled"] = True
    p = params.parse(raw)
    t = p.variant("googlenet_cifar").train
    assert t.epochs == 1 and t.max_steps_per_epoch == raw["quick"]["max_steps_per_epoch"]
    assert t.batch_size == min(raw["quick"]["batch_size"], BASE["nets"]["googlenet_cifar"]["train"]["batch_size"])
    assert t.batch_size < BASE["nets"]["googlenet_cifar"]["train"]["batch_size"], "the quick check caps the batch"
    assert p.variant_hash("googlenet_cifar") != params.parse(BASE).variant_hash("googlenet_cifar")


def test_quick_batch_must_split_over_the_processes():
    raw = copy.deepcopy(BASE)
    raw["quick"].update({"enabled": True, "batch_size": 6})
    raw["distributed"]["devices"] = 4
    with pytest.raises(ParamsError, match=r"quick\.batch_size.*6.*multiple of 4"):
        params.parse(raw)
    raw["quick"]["enabled"] = False  # only checked when the quick check is on
    params.parse(raw)


def _cli(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "params.yaml").write_text(text)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("text,expect", [
    ("nets: [unclosed\n", r"params.yaml: invalid YAML at line \d+, column \d+"),
    ("- just\n- a list\n", r"params.yaml: expected a mapping of keys at the top level, got list"),
    (yaml.safe_dump(_mutate("nets.googlenet_cifar.train.batch_size", 0)), r"nets\.googlenet_cifar\.train\.batch_size: Input should be greater than 0"),
])
def test_cli_one_line_exit_2(tmp_path, text, expect):
    r = _cli(tmp_path, text, "train", "googlenet_cifar")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netpipe: error: "), r.stderr
    import re
    assert re.search(expect, lines[0]), lines[0]


def test_cli_unknown_variant(tmp_path):
    r = _cli(tmp_path, yaml.safe_dump(BASE, sort_keys=False), "evaluate", "resnet9000")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("netpipe: error: variant 'resnet9000' is not in params 'variants'; allowed: "
                                + ", ".join(BASE["variants"]))


def test_cli_missing_params(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipeline", "train", "x"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("netpipe: error: params.yaml: not found")


def test_cli_import_is_light():
    """The CLI's import path must not pull torch/onnxruntime in (they load only when a command needs them)."""
    code = "import sys, pipeline.cli, pipeline.params; print(sorted(m for m in ('torch','onnxruntime','torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_every_knob_is_in_params_yaml():
    """Every field of the params schema appears in the repo's params.yaml at least once (as a key where it
    belongs), so a user sees, and DVC tracks, each knob; YAML anchors carry a family's knobs to its variants."""
    p = params.load(ROOT / "params.yaml")
    seen: dict[type, set[str]] = {}

    def walk(model) -> None:
        seen.setdefault(type(model), set()).update(model.model_fields_set)
        for name in model.model_fields_set:
            value = getattr(model, name)
            for v in value.values() if isinstance(value, dict) else [value]:
                if isinstance(v, params.Strict):
                    walk(v)

    walk(p)
    schedule_only = {params.ScheduleParams: {"step_size"}}  # the step schedule's: no seed uses it (see the comment)
    missing = {cls.__name__: sorted(set(cls.model_fields) - names - schedule_only.get(cls, set()))
               for cls, names in seen.items()}
    assert not {k: v for k, v in missing.items() if v}, missing
    assert "step (step_size, gamma)" in (ROOT / "params.yaml").read_text()


def test_first_line_of_an_exception():
    """The one helper every one-line error message uses (errors.first_line)."""
    from pipeline.errors import first_line

    exc = RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer. Rank 1 left.\nsecond line")
    assert first_line(exc) == "Connection closed by peer. Rank 1 left."
    assert first_line(exc, sentence=True) == "Connection closed by peer"
    assert first_line(exc, 10) == "Connection"
    assert first_line(ValueError("  bad value\nmore"), with_type=True) == "ValueError: bad value"
    assert first_line(KeyError()) == "KeyError" and first_line(OSError("  ")) == "OSError"


def test_readme_quick_check_lines_select_valid_variants(tmp_path):
    """The README's quick-check commands, applied to params.yaml the way `dvc exp run -S` applies them (DVC's Hydra
    overrides), give valid params: quick mode on, and every variant (the quick check) or exactly the ones named."""
    import shlex

    from dvc.utils.hydra import apply_overrides

    root = Path(__file__).resolve().parents[1]
    lines = [x.split("  #")[0] for x in (root / "README.md").read_text().splitlines()
             if x.startswith("dvc exp run -S quick.enabled=true")]
    assert len(lines) == 2, lines
    every = params.load(root / "params.yaml").variants
    for line in lines:
        args = shlex.split(line)
        overrides = [args[i + 1] for i, a in enumerate(args) if a == "-S"]
        target = tmp_path / "params.yaml"
        target.write_text((root / "params.yaml").read_text())
        apply_overrides(target, overrides)
        p = params.load(target)
        if "~variants" in overrides:  # the shorter check: one network of each seed document
            named = yaml.safe_load(overrides[-1].split("=", 1)[1])
            assert len(named) == 5 and {p.nets[v].seed_reference["doc"] for v in named} == {
                "000", "001", "002", "003", "004"}, "one per seed"
        else:
            named = every
        assert p.quick.enabled and p.variants == named and set(named) <= set(every)
    assert len(every) == 18


def test_the_old_top_level_train_key_is_named_in_one_line(tmp_path):
    """`train:` at the top level was the distributed setup while nets.VARIANT.train is a recipe; it is now
    `distributed:`, and an old params file says so in one line."""
    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "params.yaml").read_text())
    raw["train"] = raw.pop("distributed")
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as exc:
        params.load(f)
    assert str(exc.value) == (f"{f}: train: the top-level `train:` (devices, nodes, backend, ...) is now called "
                              "`distributed:`; rename it (each variant's recipe stays under nets.VARIANT.train)")


def test_a_plan_holds_the_quick_checks_overlay_in_one_place():
    """Params.plan applies the quick check once (recipe, evaluation images, bench matrix), and `netpipe variants`
    prints the plan: what the stages will use."""
    from pipeline.variants import plan_cells

    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "params.yaml").read_text())
    full = params.parse(copy.deepcopy(raw)).plan("googlenet_cifar")
    raw["quick"]["enabled"] = True
    quick = params.parse(raw).plan("googlenet_cifar")
    assert (full.net.train.epochs, full.net.train.batch_size, full.eval_samples) == (100, 128, None)
    assert (quick.net.train.epochs, quick.net.train.batch_size, quick.eval_samples) == (1, 8, 4)
    assert quick.recipe == full.recipe == full.net  # the recipe as stated, which the quick check's schedule follows
    assert full.bench.batch_sizes == (1, 8, 64, 256) and quick.bench.batch_sizes == (1, 4)
    assert quick.bench.backends == ("torch_eager", "ort_cuda", "ort_cpu") and quick.bench.precisions == ("fp32",)
    assert (quick.dataset, quick.channels, quick.mean) == ("cifar10", 3, (0.4914, 0.4822, 0.4465))
    inp, how, ev = plan_cells(quick)
    assert inp.startswith("3x32x32, mean 0.4914/0.4822/0.4465")
    assert how.startswith("1 ep, bs 8, sgd lr 0.1") and how.endswith("(quick check: the recipe's first steps)")
    assert ev == "pad 4 + 32 crop x10, 4 images"
    assert plan_cells(full)[2] == "pad 4 + 32 crop x10"
