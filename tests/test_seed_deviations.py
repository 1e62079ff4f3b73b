"""Every departure of a recipe from its seed document's code is named in params.yaml and shown by the report (issue 30).

The repo's own params.yaml, no mocks: each variant with a `seed_reference` lists `deviations` ({what, seed, ours, why,
cite}), the topics the issue found unnamed are there for the variants they concern, the items change no config hash,
and `netpipe report` (run in an empty directory: no stage outputs needed) tables every item under its seed document.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pipeline import params, report
from pipeline.errors import ParamsError

REPO = Path(__file__).resolve().parents[1]
P = params.load(REPO / "params.yaml")
SEEDED = {name: net.seed_reference for name, net in P.nets.items() if net.seed_reference}
BY_DOC = {doc: {n for n, ref in SEEDED.items() if ref["doc"] == doc} for doc in ("000", "001", "002", "003", "004")}
FIELDS = ("what", "seed", "ours", "why", "cite")


def _whats(name: str) -> list[str]:
    return [d["what"].lower() for d in SEEDED[name]["deviations"]]


def test_every_seeded_variant_lists_its_deviations():
    assert set(P.variants) <= set(SEEDED), "every variant the pipeline builds has a seed document"
    assert sum(map(len, BY_DOC.values())) == len(SEEDED) == len(P.nets)
    for name, ref in SEEDED.items():
        devs = ref.get("deviations")
        assert isinstance(devs, list) and devs, f"nets.{name}.seed_reference has no deviations list"
        for i, d in enumerate(devs):
            for key in FIELDS:
                assert isinstance(d.get(key), str) and d[key].strip(), f"nets.{name}: deviations[{i}] lacks {key!r}"
        assert len(set(_whats(name))) == len(devs), f"nets.{name}: a topic listed twice"


# Issue 30's findings: a word of an item's `what` -> the variants it concerns.
ISSUE_TOPICS = {
    "training split": set(SEEDED),  # 45k/5k against the seeds' 50k/60k (000: the same split)
    "precision": set(SEEDED),  # fp32 in every seed, bf16 autocast here
    "learning rate": BY_DOC["000"],  # 000's config says 0.001, its text 0.01 (Adam: its own rate)
    "epochs": BY_DOC["000"] | {"alexnet_thinner_4_short", "alexnet_mnist_bn_short"},  # 84,001 / 10,000 steps
    "test protocol": BY_DOC["000"] | BY_DOC["001"] | BY_DOC["004"],  # random crop / train mode / 1,000 images
    "input": BY_DOC["000"] | BY_DOC["004"],  # 000's per-pixel mean of each split, 004's [0, 1] pixels
    "shift augmentation": BY_DOC["002"],  # continuous shifts filled with the mean colour
    "warm-up": {"alexnet_slim_regular", "alexnet_thinner_2"},
    "widths": {"alexnet_thinner_2"},  # inferred from the parameter count
    "test set": {"alexnet_thinner_4_short"},  # its schedule doubled after a test-set reading
}


@pytest.mark.parametrize("topic", ISSUE_TOPICS)
def test_issue_topics_are_named_where_they_apply(topic):
    missing = sorted(n for n in ISSUE_TOPICS[topic] if not any(topic in w for w in _whats(n)))
    assert not missing, f"no deviation about {topic!r} in: {', '.join(missing)}"


def test_free_matches_are_matched_not_named():
    """Issue 30: where matching the seed costs nothing, the recipe matches it, and no deviation is left to name."""
    adam, sgd = (P.nets[n].train.optimizer for n in ("alexnet_cifar_adam", "alexnet_cifar"))
    # 000's loss adds 0.004 x l2_loss(w) of each FC weight whatever the optimizer: Adam's coupled L2 on linear kernels
    assert adam.name == "adam"
    assert (adam.weight_decay, adam.decay_on) == (sgd.weight_decay, sgd.decay_on) == (0.004, "linear")
    assert not any("weight decay" in w for w in _whats("alexnet_cifar_adam"))
    # 001's train.py normalises every model, the fine-tuned one too, with mean 0.5 / std 0.5
    ft, scratch = P.nets["alexnet_torchvision_ft"], P.nets["alexnet_torchvision"]
    assert ft.normalize == scratch.normalize and list(ft.normalize.mean) == list(ft.normalize.std) == [0.5] * 3
    assert not any("normalisation" in w for w in _whats("alexnet_torchvision_ft"))


def test_the_test_set_breach_is_named():
    item = next(d for d in SEEDED["alexnet_thinner_4_short"]["deviations"] if "test set" in d["what"])
    assert "79.41%" in item["why"] and "validation data" in item["why"]
    readme = (REPO / "README.md").read_text()
    assert "Decisions about a recipe (epochs, schedule, warm-up, seed) are taken on validation data" in readme
    assert "as the seed's 45k/5k" not in readme, "45k/5k was 000's split only"


def test_a_deviation_without_why_is_refused_and_none_changes_a_hash():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    bad = copy.deepcopy(raw)
    del bad["nets"]["alexnet_cifar"]["seed_reference"]["deviations"][0]["why"]
    with pytest.raises(ParamsError, match=r"nets\.alexnet_cifar\.seed_reference: deviations\[0\]\.why"):
        params.parse(bad)
    bare = copy.deepcopy(raw)
    for net in bare["nets"].values():
        (net.get("seed_reference") or {}).pop("deviations", None)
    plain = params.parse(bare)
    assert all(plain.variant_hash(n) == P.variant_hash(n) for n in P.variants), "seed_reference is in a config hash"


def test_the_report_tables_every_deviation_by_document(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stage outputs here: the report still shows the params' deviations
    report.run(P)
    md = (tmp_path / "artifacts" / "report.md").read_text()
    section = md.split("### Deviations from the seeds' code\n", 1)[1].split("\n## ", 1)[0]
    assert md.index("## Results") < md.index("### Deviations from the seeds' code") < md.index("## Best variant")
    for doc in BY_DOC:
        names = [n for n in P.variants if n in BY_DOC[doc]]
        head = f"#### Seed document {doc}: " + ", ".join(f"`{n}`" for n in names)
        assert head in section, head
        table = section.split(head, 1)[1].split("\n#### ", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| variants |")]
        for name in names:
            for d in SEEDED[name]["deviations"]:
                cells = " | ".join(report._md_escape(d[k]) for k in FIELDS)
                row = next((r for r in rows if r.endswith(f" | {cells} |")), None)
                assert row is not None, f"{doc}: no row for {name}'s {d['what']!r}"
                who = row[2:].split(" | ", 1)[0]
                assert who == "all" or f"`{name}`" in who, (name, d["what"], who)
