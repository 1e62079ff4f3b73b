"""Our figure scored the seed's way (pipeline/seed_protocol.py) on the REAL outputs of the tiny project of
tests/conftest.py: the protocol that equals netpipe's gives netpipe's figure, the seed's randomness is repeatable and
leaves the run's random state and the model alone, "the first N test images" is refused on an image-folder copy,
and evaluate records it."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from pipeline import params, paths, seed_protocol, transforms
from pipeline.data import load_prepared
from pipeline.model import load_model
from pipeline.params import ParamsError

V000 = "alexnet_cifar"  # 000: random crop, dropout on, the test images' own mean


@pytest.fixture
def project(pipeline_project, monkeypatch):
    monkeypatch.chdir(pipeline_project)
    return pipeline_project


def _plan(variant: str, protocol: dict | None):
    p = params.load("params.yaml")
    net = p.nets[variant]
    ref = {**(net.seed_reference or {}), "protocol": protocol}
    p.nets[variant] = net.model_copy(update={"seed_reference": ref})
    return p.plan(variant)


def test_evaluate_records_the_seeds_way(project):
    m = json.loads(paths.metrics(V000).read_text())
    sp = m["seed_protocol"]
    assert sp["measured"] and sp["n_test"] == m["n_test"] and 0 <= sp["top1"] <= 1
    assert sp["protocol"] == seed_protocol.describe(params.load("params.yaml").nets[V000].seed_reference["protocol"])
    assert "train mode" in sp["protocol"] and "random crop" in sp["protocol"]
    assert json.loads(paths.metrics("alexnet_thinner_4").read_text())["seed_protocol"] is None  # 002 scored as we do


def test_netpipes_own_protocol_gives_netpipes_figure(project):
    pl = _plan(V000, {"mode": "eval"})
    data = load_prepared(pl.dataset, train=False)
    model, _ = load_model(pl, torch.device("cpu"))
    out = seed_protocol.measure(pl, model, data, torch.device("cpu"))
    assert out["measured"] and out["n_test"] == pl.eval_samples
    first = data.x_test[: pl.eval_samples], data.y_test[: pl.eval_samples]  # the first N, not an even spread
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (pl.mean, pl.std))
    with torch.no_grad():
        logits = model(transforms.normalize(transforms.center_crop(torch.from_numpy(first[0]), pl.net.eval,
                                                                   pl.net.input_size), mean, std))
    assert out["top1"] == round(float((logits.argmax(1) == torch.from_numpy(first[1])).float().mean()), 6)


def test_the_seeds_randomness_is_repeatable_and_touches_nothing(project):
    pl = _plan(V000, params.load("params.yaml").nets[V000].seed_reference["protocol"])
    data = load_prepared(pl.dataset, train=False)
    model, _ = load_model(pl, torch.device("cpu"))
    before = copy.deepcopy(model.state_dict())
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    a = seed_protocol.measure(pl, model, data, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng), "the run's random state is left as it was"
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert seed_protocol.measure(pl, model, data, torch.device("cpu")) == a


def test_first_n_test_images_needs_the_official_order(project):
    pl = _plan("alexnet_cifar_nolrn", {"test_images": 5, "mode": "train"})  # its data: an image-folder copy
    assert pl.data.source == "folder"
    out = seed_protocol.measure(pl, load_model(pl, torch.device("cpu"))[0], load_prepared(pl.dataset, train=False),
                                torch.device("cpu"))
    assert not out["measured"] and "official order" in out["reason"]
    pl = _plan(V000, {"test_images": 5, "mode": "train", "batch": 5})
    assert pl.data.source != "folder"
    out = seed_protocol.measure(pl, load_model(pl, torch.device("cpu"))[0], load_prepared(pl.dataset, train=False),
                                torch.device("cpu"))
    assert out["measured"] and out["n_test"] == 5


def test_a_bad_protocol_is_one_line(tmp_path):
    import yaml

    from tests.conftest import _REPO

    raw = yaml.safe_load((_REPO / "params.yaml").read_text())
    raw["nets"][V000]["seed_reference"]["protocol"] = {"mode": "dropout"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"seed_reference.*protocol\.mode: Input should be 'eval' or 'train'"):
        params.load(tmp_path / "params.yaml")
