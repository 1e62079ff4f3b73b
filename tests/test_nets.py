"""The network registry: every arch builds, runs, has the seed document's parameter count and validates options."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from pipeline import nets, params
from pipeline.errors import ParamsError

ARCHS = nets.names()
# Total params printed by the seed documents (002's model.summary()).
DOC_PARAMS = {
    "alexnet_keras": 21_622_154,
    "alexnet_slim": 87_650_186,
    "alexnet_slim_regular": 87_650_186,
    "alexnet_thinner_2": 6_074_250,
    "alexnet_thinner_4": 5_488_106,
}
# Counted by hand from the documents' layer tables (regression values for nets whose documents state none).
OUR_PARAMS = {
    # convs 685,536 + FC 1536*1024+1024 + 1024*1024+1024 + 1024*10+10
    ("alexnet_cifar", ()): 102_409_706,  # the document: FC1 98304 x 1024
    ("alexnet_cifar", (("pool_stride", 2),)): 3_319_274,
    # the document's own FC1 98304 x 1024 (2x2 pools at stride 1)
    ("alexnet_cifar", (("pool_stride", 1),)): 102_409_706,
    ("alexnet_cifar", (("head", "gap"),)): 685_536 + 96 * 10 + 10,
    # convs 3,723,968 + FC 9216*4096+4096 + 4096*4096+4096 + 4096*10+10
    ("alexnet_mnist", ()): 58_299_082,
    ("alexnet_mnist", (("groups", 2),)): 58_299_082 - (384 * 384 + 384 * 256) * 9 // 2,
}
EXPECTED_ARCHS = {"alexnet_cifar", "alexnet_keras", "alexnet_mnist", "alexnet_slim", "alexnet_slim_regular",
                     "alexnet_thinner_2", "alexnet_thinner_4", "alexnet_torchvision", "googlenet_cifar"}


@functools.cache
def built(arch: str, **options) -> nn.Module:
    torch.manual_seed(0)
    return nets.create(arch, num_classes=10, **options)


def batch(arch: str, n: int = 1, channels: int | None = None) -> torch.Tensor:
    e = nets.entry(arch)
    return torch.randn(n, channels or e.in_channels, e.input_size, e.input_size)


def run(model: nn.Module, x: torch.Tensor, train: bool):
    model.train(train)
    with torch.set_grad_enabled(train):
        return model(x)


def test_registry_lists_all_archs():
    assert set(ARCHS) == EXPECTED_ARCHS
    for arch in ARCHS:
        e = nets.entry(arch)
        assert e.doc.endswith(".txt") and e.input_size in (32, 224, 227) and e.in_channels in (1, 3)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_eval_and_train(arch):
    model, x = built(arch), batch(arch)
    assert nets.count_params(model) == nets.param_count(arch)  # meta-device count = real count
    logits = run(model, x, train=False)
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
    out = run(model, x, train=True)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 10)  # no aux outputs by default
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("arch", sorted(DOC_PARAMS))
def test_param_counts_match_document(arch):
    assert nets.param_count(arch) == DOC_PARAMS[arch] == nets.entry(arch).reported_params


def test_reported_params_only_where_the_document_fixes_them():
    assert {a for a in ARCHS if nets.entry(a).reported_params is not None} == set(DOC_PARAMS)


def test_params_yaml_quotes_the_documents_counts_for_the_report():
    """The report prints the seed document's parameter count beside ours from nets.VARIANT.seed_reference.params:
    each variant of a network whose document prints one quotes that count, and no other variant quotes any."""
    p = params.load(Path(__file__).parents[1] / "params.yaml")
    for name, net in p.nets.items():
        quoted = (net.seed_reference or {}).get("params")
        expected = nets.entry(net.arch).reported_params
        assert quoted == expected, f"nets.{name}.seed_reference.params: {quoted}, the document: {expected}"


def test_googlenet_cifar_count_derived_from_torchvision():
    """No document states 003's count: derive it from torchvision's GoogLeNet (BatchNorm, convs without bias, no
    aux heads) and what differs in the document's model.py: conv1 3x3 instead of 7x7 (same 3 -> 64 channels); no
    1x1 conv2 (torchvision's conv2 + BatchNorm; the document's conv2 is torchvision's 3x3 conv3); every conv with a
    bias; the inception "5x5" branch really 5x5 (torchvision keeps a 3x3 there for compatibility);
    maxpool1/maxpool2 removed (no parameters)."""
    tv = torchvision.models.googlenet(weights=None, num_classes=10, aux_logits=False, init_weights=False)
    convs = [m for m in tv.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs) and tv.conv1.conv.kernel_size == (7, 7)
    five = [m.branch3[1].conv for m in tv.modules() if type(m).__name__ == "Inception"]
    assert len(five) == 9 and all(c.kernel_size == (3, 3) for c in five)
    expected = (sum(t.numel() for t in tv.parameters())
                - 3 * 64 * (7 * 7 - 3 * 3)  # conv1
                - sum(t.numel() for t in tv.conv2.parameters())  # the 1x1 conv2 and its BatchNorm
                + sum(c.out_channels for c in convs if c is not tv.conv2.conv)  # biases
                + sum(c.in_channels * c.out_channels * (5 * 5 - 3 * 3) for c in five))
    assert nets.param_count("googlenet_cifar") == expected


@pytest.mark.parametrize(("arch", "options"), sorted(OUR_PARAMS))
def test_param_counts_by_hand(arch, options):
    assert nets.param_count(arch, **dict(options)) == OUR_PARAMS[arch, options]


def test_torchvision_count_is_torchvisions_alexnet_with_10_classes():
    with torch.device("meta"):
        ref = nets.count_params(torchvision.models.alexnet(num_classes=10))
    assert nets.param_count("alexnet_torchvision") == ref == 57_044_810
    assert nets.param_count("alexnet_torchvision", num_classes=1000) == 61_100_840  # torchvision's documented figure


def test_thinner_2_plain_halving_differs_from_document():
    # documented in alexnet_keras: 6,074,250 is conv1..4 halved, conv5 and Dense at thinner_4's widths
    m = built("alexnet_thinner_2")
    convs = [l.out_channels for l in m.modules() if isinstance(l, nn.Conv2d)]
    fcs = [l.out_features for l in m.modules() if isinstance(l, nn.Linear)]
    assert convs == [48, 128, 192, 192, 64] and fcs == [1024, 1024, 10]


@pytest.mark.parametrize(("arch", "side", "channels"), [
    ("alexnet_keras", 1, 256), ("alexnet_slim", 8, 256), ("alexnet_thinner_4", 8, 64),
    ("alexnet_cifar", 32, 96), ("alexnet_mnist", 6, 256),  # alexnet_cifar: stride-1 pools (the document)
])
def test_feature_map_sizes(arch, side, channels):
    # Keras 'same' geometry 32 -> 8 -> 4 -> 2 -> 1 (alexnet_keras) / 32 -> 16 -> 8 (slim); 004's 227 -> 55 -> 27 -> 13 -> 6
    with torch.no_grad():
        assert built(arch).eval()[0](batch(arch, 1)).shape == (1, channels, side, side)


def test_keras_same_padding_of_the_strided_conv():
    # TF 'same' for 11x11 stride 4 on 32: 3 zeros before and 4 after; compare with an explicit padded convolution
    feats = built("alexnet_keras")[0]
    conv = next(m for m in feats if isinstance(m, nn.Conv2d))
    x = torch.randn(1, 3, 32, 32)
    ref = nn.functional.conv2d(nn.functional.pad(x, (3, 4, 3, 4)), conv.weight, conv.bias, stride=4)
    with torch.no_grad():
        assert torch.allclose(feats[1](feats[0](x)), ref)
        assert nn.MaxPool2d(3, 2, ceil_mode=True)(torch.zeros(1, 1, 2, 2)).shape[-1] == 1  # 2 -> 1 as Keras


def _tf_lrn(x: torch.Tensor, radius: int, bias: float, alpha: float, beta: float) -> torch.Tensor:
    sq = nn.functional.pad(x.pow(2), (0, 0, 0, 0, radius, radius))  # pad the channel axis
    sqr_sum = sum(sq[:, i:i + x.shape[1]] for i in range(2 * radius + 1))
    return x / (bias + alpha * sqr_sum).pow(beta)


@pytest.mark.parametrize(("arch", "radius", "alpha"), [("alexnet_cifar", 4, 0.001 / 9), ("alexnet_mnist", 2, 2e-05)])
def test_lrn_matches_tensorflow(arch, radius, alpha):
    lrn = next(m for m in built(arch).modules() if isinstance(m, nn.LocalResponseNorm))
    x = torch.rand(2, 16, 3, 3) * 30
    assert torch.allclose(lrn(x), _tf_lrn(x, radius, 1.0, alpha, 0.75), rtol=1e-5)


VARIANTS = [
    ("alexnet_cifar", {"lrn": "first"}), ("alexnet_cifar", {"lrn": "none"}), ("alexnet_cifar", {"head": "gap"}),
    ("alexnet_cifar", {"batchnorm": True, "init": "default", "dropout": 0.5}), ("alexnet_cifar", {"pool_stride": 2}),
    ("alexnet_keras", {"init": "he_normal"}), ("alexnet_keras", {"init": "default", "dropout": 0.0}),
    ("alexnet_thinner_4", {"init": "uniform"}), ("alexnet_thinner_2", {"init": "default"}),
    ("googlenet_cifar", {"batchnorm": False}), ("googlenet_cifar", {"init": "default", "dropout": 0.0}),
    ("alexnet_mnist", {"norm": "batchnorm", "init": "default"}), ("alexnet_mnist", {"norm": "none", "init": "default"}),
    ("alexnet_mnist", {"groups": 2, "init": "default"}), ("alexnet_mnist", {"init": "unit"}),
    ("alexnet_torchvision", {"dropout": 0.2}),
]


@pytest.mark.parametrize(("arch", "options"), VARIANTS, ids=[f"{a}-{o}" for a, o in VARIANTS])
def test_variants_build_and_run(arch, options):
    model = built(arch, **options)
    assert nets.count_params(model) == nets.param_count(arch, **options)
    x = batch(arch, n=2 if options.get("norm") == "batchnorm" else 1)  # BatchNorm1d trains on >= 2 samples
    assert run(model, x, train=True).shape == (len(x), 10)
    logits = run(model, x, train=False)
    assert logits.shape == (len(x), 10)
    if options.get("init") != "unit":  # 004's experiment 1 init blows up by design
        assert torch.isfinite(logits).all()


def test_variant_structure():
    def count(arch, kind, **options):
        return sum(isinstance(m, kind) for m in built(arch, **options).modules())

    assert [count("alexnet_cifar", nn.LocalResponseNorm, lrn=v) for v in ("both", "first", "none")] == [2, 1, 0]
    assert count("alexnet_cifar", nn.BatchNorm2d, batchnorm=True, init="default", dropout=0.5) == 5
    assert count("alexnet_cifar", nn.Linear, head="gap") == 1
    assert count("alexnet_mnist", nn.LocalResponseNorm) == 2
    assert count("alexnet_mnist", nn.BatchNorm2d, norm="batchnorm", init="default") == 5
    assert count("alexnet_mnist", nn.BatchNorm1d, norm="batchnorm", init="default") == 2
    assert count("alexnet_mnist", nn.LocalResponseNorm, norm="batchnorm", init="default") == 0
    assert [m.groups for m in built("alexnet_mnist", groups=2, init="default").modules()
            if isinstance(m, nn.Conv2d)] == [1, 1, 1, 2, 2]
    assert count("googlenet_cifar", nn.BatchNorm2d) == 2 + 9 * 6 and count("googlenet_cifar", nn.BatchNorm2d, batchnorm=False) == 0


def test_googlenet_aux_outputs_in_training_only():
    model = built("googlenet_cifar", aux_logits=True)
    x = batch("googlenet_cifar")
    out = run(model, x, train=True)
    assert isinstance(out, tuple) and len(out) == 3 and all(o.shape == (1, 10) for o in out)
    sum(o.float().pow(2).mean() for o in out).backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None
    assert run(model, x, train=False).shape == (1, 10)
    aux = (512 + 528) * 128 + 2 * (128 + 2 * 128 + 2049 * 1024 + 1025 * 10)  # 1x1 conv + BN, fc1, fc2 (4a: 512, 4d: 528)
    assert nets.param_count("googlenet_cifar", aux_logits=True) == nets.param_count("googlenet_cifar") + aux


def test_other_input_channels():
    for arch in ("alexnet_cifar", "alexnet_thinner_4"):
        assert run(built(arch, in_channels=1), batch(arch, channels=1), train=False).shape == (1, 10)
    assert nets.param_count("googlenet_cifar", in_channels=1) == nets.param_count("googlenet_cifar") - 2 * 9 * 64
    assert nets.param_count("alexnet_mnist", in_channels=3) == 58_299_082 + 2 * 11 * 11 * 96


# ---- initialisation -------------------------------------------------------------------------------------------
def _layers(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def _rel_std_ok(w: torch.Tensor, std: float, tol: float = 0.05) -> bool:
    return abs(w.std().item() / std - 1) < tol


def test_init_msra_cifar():
    for m in _layers(built("alexnet_cifar", init="msra"), (nn.Conv2d, nn.Linear)):
        assert (m.bias == 0).all() and _rel_std_ok(m.weight, (2 / m.weight[0].numel()) ** 0.5, 0.15)


def test_trunc_normal_draws_torchs_distribution():
    """nets.trunc_normal_ (redraws only the values outside the cut) and torch.nn.init.trunc_normal_ (redraws whole
    tensors) sample one distribution: every value inside [a, b], the same mean, std and quantiles (to 1% of the
    std on 2M draws, where a wrong cut or a lost redraw shifts them by far more); a narrow cut and a meta tensor go
    through torch's own; the draws follow the seed."""
    torch.manual_seed(0)
    ours, theirs = torch.empty(2_000_000), torch.empty(2_000_000)
    nets.trunc_normal_(ours, 0.5, 2.0, -3.5, 4.5)
    nn.init.trunc_normal_(theirs, 0.5, 2.0, -3.5, 4.5)
    assert ours.min() >= -3.5 and ours.max() <= 4.5
    q = torch.linspace(0.005, 0.995, 199)
    qs = [torch.quantile(x[:1_000_000], q) for x in (ours, theirs)]  # quantile's size limit: 16M, 1M is plenty
    assert float((qs[0] - qs[1]).abs().max()) < 0.02
    assert abs(float(ours.mean()) - 0.5) < 0.01 and abs(float(ours.std()) - float(theirs.std())) < 0.01
    torch.manual_seed(0)
    again = nets.trunc_normal_(torch.empty(2_000_000), 0.5, 2.0, -3.5, 4.5)
    assert torch.equal(again, ours)
    narrow = nets.trunc_normal_(torch.empty(10_000), 0.0, 1.0, 2.0, 2.5)  # keeps 1.6% of the mass
    assert narrow.min() >= 2.0 and narrow.max() <= 2.5
    assert nets.trunc_normal_(torch.empty(3, device="meta"), 0.0, 1.0, -2.0, 2.0).is_meta


def test_init_seed_cifar():
    """000's code: every weight truncated-normal std 0.01 (TensorFlow cuts at 2 std, which leaves a std of
    0.01 x 0.88), biases zero; the default."""
    for m in _layers(built("alexnet_cifar"), (nn.Conv2d, nn.Linear)):
        assert (m.bias == 0).all() and m.weight.abs().max() <= 0.02 + 1e-7
        assert _rel_std_ok(m.weight, 0.01 * 0.8796, 0.25 if m.weight.numel() < 1000 else 0.03)


def test_init_seed_v1_cifar():
    """000's experiment-1 code (commits 315f162..74e99a4): conv1..conv5 truncated-normal stds 0.055, 0.0034,
    0.0034, 0.0024, 0.0034, FC layers 0.01, biases zero."""
    model = built("alexnet_cifar", init="seed_v1")
    stds = [0.055, 0.0034, 0.0034, 0.0024, 0.0034] + [0.01] * 3
    layers = _layers(model, nn.Conv2d) + _layers(model, nn.Linear)
    assert len(layers) == len(stds)
    for m, std in zip(layers, stds):
        assert (m.bias == 0).all() and m.weight.abs().max() <= 2 * std + 1e-7
        assert _rel_std_ok(m.weight, std * 0.8796, 0.25 if m.weight.numel() < 1000 else 0.03)


def test_init_keras():
    uni = built("alexnet_keras")
    he = built("alexnet_thinner_4")
    for m in _layers(uni, nn.Conv2d):
        assert m.weight.abs().max() <= 0.05 and (m.bias == 0).all()
    for m in _layers(he, nn.Conv2d)[2:]:  # enough weights for a stable std
        std = (2 / m.weight[0].numel()) ** 0.5
        assert _rel_std_ok(m.weight, std) and m.weight.abs().max() <= 2 * std / 0.8796 + 1e-6
    for m in _layers(uni, nn.Linear) + _layers(he, nn.Linear):  # Dense layers: Keras glorot_uniform, zero bias
        bound = (6 / (m.in_features + m.out_features)) ** 0.5
        assert m.weight.abs().max() <= bound and (m.bias == 0).all()


def test_init_googlenet():
    for m in _layers(built("googlenet_cifar"), (nn.Conv2d, nn.Linear)):
        fan_out = m.weight.shape[0] * m.weight[0][0].numel()
        assert m.weight.abs().max() <= (6 / fan_out) ** 0.5 + 1e-6


def test_init_mnist():
    for m in _layers(built("alexnet_mnist"), (nn.Conv2d, nn.Linear)):  # "seed": experiment 2
        assert m.weight.abs().max() <= 0.02 and (m.bias - 0.005).abs().max() <= 0.2
    unit = built("alexnet_mnist", init="unit")
    for m in _layers(unit, (nn.Conv2d, nn.Linear)):  # experiment 1
        assert (m.bias == 0.1).all() and m.weight.abs().max() <= 2 and m.weight.std() > 0.8


# ---- option validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_option_is_a_params_error(arch):
    with pytest.raises(ParamsError, match=r"options\.bogus: unknown option"):
        nets.create(arch, bogus=1)


BAD = [
    ("alexnet_cifar", {"lrn": "x"}, "lrn must be one of 'both', 'first', 'none' (got 'x')"),
    ("alexnet_cifar", {"head": "fc3"}, "head must be one of"),
    ("alexnet_cifar", {"batchnorm": "yes"}, "batchnorm must be true or false"),
    ("alexnet_cifar", {"init": "xavier"}, "init must be one of 'seed', 'seed_v1', 'msra', 'default'"),
    ("alexnet_cifar", {"pool_stride": 3}, "pool_stride must be one of 1, 2"),
    ("alexnet_cifar", {"dropout": 0.9 + 0.1}, "dropout must be a drop rate in [0, 1)"),
    ("alexnet_keras", {"init": "glorot"}, "init must be one of 'uniform', 'he_normal', 'default'"),
    ("alexnet_thinner_2", {"dropout": -0.1}, "dropout must be"),
    ("alexnet_slim", {"dropout": "half"}, "dropout must be"),
    ("googlenet_cifar", {"aux_logits": "true"}, "aux_logits must be true or false"),
    ("googlenet_cifar", {"batchnorm": 1}, "batchnorm must be true or false"),
    ("googlenet_cifar", {"init": "kaiming_normal"}, "init must be one of"),
    ("googlenet_cifar", {"dropout": 1}, "dropout must be"),
    ("alexnet_mnist", {"norm": "bn"}, "norm must be one of 'lrn', 'batchnorm', 'none'"),
    ("alexnet_mnist", {"groups": 3}, "groups must be one of 1, 2 (got 3)"),
    ("alexnet_mnist", {"groups": True}, "groups must be one of"),
    ("alexnet_mnist", {"init": "glorot"}, "init must be one of 'seed', 'unit', 'default'"),
    ("alexnet_torchvision", {"pretrained": 5}, "pretrained must be null, 'imagenet' or the path"),
    ("alexnet_torchvision", {"pretrained": ""}, "pretrained must be"),
    ("alexnet_torchvision", {"in_channels": 1}, "in_channels must be 3"),
]


@pytest.mark.parametrize(("arch", "options", "message"), BAD, ids=[f"{a}-{o}" for a, o, _ in BAD])
def test_bad_option_values_are_params_errors(arch, options, message):
    with pytest.raises(ParamsError) as info, torch.device("meta"):
        nets.create(arch, **options)
    assert message in str(info.value) and str(info.value).startswith("options: ") and "\n" not in str(info.value)


# ---- torchvision pretrained weights ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    """A 1000-class torchvision AlexNet state dict saved as a fine-tuning user would (torch.save)."""
    torch.manual_seed(1)
    state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "alexnet-1000.pth"
    torch.save(state, path)
    return path, state


def _assert_finetune_model(model: nn.Module, state: dict) -> None:
    got = model.state_dict()
    for k, v in state.items():
        if k.startswith("classifier.6."):
            assert got[k].shape[0] == 10 and v.shape[0] == 1000
        else:
            assert torch.equal(got[k], v), k
    assert model.classifier[6].out_features == 10


def test_finetune_from_a_local_state_dict(imagenet_like):
    path, state = imagenet_like
    model = nets.create("alexnet_torchvision", pretrained=str(path))
    _assert_finetune_model(model, state)
    assert run(model, batch("alexnet_torchvision", 1), train=False).shape == (1, 10)
    # counting parameters (meta device) never reads the file
    assert nets.param_count("alexnet_torchvision", pretrained=str(path.with_name("absent.pth"))) == 57_044_810


def test_imagenet_goes_through_torchvision_weights(imagenet_like, monkeypatch):
    _, state = imagenet_like
    calls = []

    def fake_get_state_dict(self, *args, **kwargs):
        calls.append(kwargs)
        return state

    monkeypatch.setattr(torchvision.models.AlexNet_Weights, "get_state_dict", fake_get_state_dict)
    _assert_finetune_model(nets.create("alexnet_torchvision", pretrained="imagenet"), state)
    assert calls and calls[0].get("check_hash") is True


def test_imagenet_download_failure_is_a_params_error(monkeypatch):
    def offline(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models.AlexNet_Weights, "get_state_dict", offline)
    with pytest.raises(ParamsError, match="alexnet-owt-7be5be79.pth.*network unreachable"):
        nets.create("alexnet_torchvision", pretrained="imagenet")


def test_missing_weights_file_is_a_params_error(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(ParamsError, match=re.escape(f"cannot load weights file {missing}")):
        nets.create("alexnet_torchvision", pretrained=str(missing))


def test_unusable_weights_files_are_params_errors(tmp_path, imagenet_like):
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ParamsError, match=re.escape(str(garbage))):
        nets.create("alexnet_torchvision", pretrained=str(garbage))
    other = tmp_path / "other.pth"
    torch.save(built("alexnet_thinner_4").state_dict(), other)
    with pytest.raises(ParamsError, match=re.escape(f"{other} is not a torchvision AlexNet")):
        nets.create("alexnet_torchvision", pretrained=str(other))
    wrong_shape = tmp_path / "wrong.pth"
    state = {**imagenet_like[1], "features.0.weight": torch.zeros(64, 1, 11, 11)}
    torch.save(state, wrong_shape)
    with pytest.raises(ParamsError, match=re.escape(f"{wrong_shape} does not fit")):
        nets.create("alexnet_torchvision", pretrained=str(wrong_shape))


def test_netpipe_variants_lists_every_variant_with_its_parameter_count():
    """`netpipe variants` on the repo's params.yaml: a row per variant (built ones with their dataset), each with
    its parameter count as the registry computes it (the seed documents' where they fix one) and its recipe."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipeline import params

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "pipeline", "variants"], cwd=root, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert r.returncode == 0 and not r.stderr, r.stderr
    p = params.load(root / "params.yaml")
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") > 3}
    for name, net in p.nets.items():
        row = rows[name]
        chans = p.channels(p.variants[name]) if name in p.variants else None
        assert f"{nets.param_count(net.arch, 10, chans, input_size=net.input_size, **net.options):,}" in row, row
        assert (p.variants.get(name) or "not built") in row and f"{net.train.epochs} ep" in row
    for arch, count in DOC_PARAMS.items():
        assert f"{count:,}" in r.stdout
