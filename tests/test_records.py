"""Each stage's JSON output is described once (pipeline/records.py) and shared by the stage that writes it and the
report that reads it: what the stages really write round-trips through the records exactly (no key the record
lacks, none it adds), and an output that does not match stops or is skipped with one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline import params, paths, records, report
from pipeline.errors import NetpipeError
from tests.conftest import TINY_VARIANTS
from tests.test_bench_report import _copy_project

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = {  # record -> where its stage writes it
    records.TrainSummary: paths.train_summary,
    records.Metrics: paths.metrics,
    records.ExportReport: paths.export_report,
    records.BenchReport: paths.bench,
}


@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
def test_stage_outputs_round_trip_through_their_records(pipeline_project, monkeypatch, variant):
    monkeypatch.chdir(pipeline_project)
    for record, where in OUTPUTS.items():
        raw = json.loads(where(variant).read_text())
        assert record.read(where(variant)).model_dump(mode="json") == raw, (record.__name__, variant)


def test_committed_results_match_the_records():
    """The results kept in git (artifacts/) are read by today's report: they must still be valid records."""
    seen = 0
    for record, where in OUTPUTS.items():
        folder = REPO / where("x").parent
        for f in sorted(folder.glob("*.json")):
            record.read(f)
            seen += 1
    assert seen >= 4, "no committed stage output found"


def test_a_writer_cannot_add_an_undeclared_key():
    ok = records.Skipped(backend="ort_cpu", precision="bf16", reason="no bf16 file")
    with pytest.raises(ValueError, match="extra"):
        records.Skipped(**ok.model_dump(), note="not declared")


def test_outdated_output_is_one_line_and_shows_as_missing(pipeline_project, tmp_path, monkeypatch, capsys):
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    v = "alexnet_thinner_4"
    m = json.loads(paths.metrics(v).read_text())
    m["top1_old"] = m.pop("top1")  # a file from another version: a key renamed
    paths.metrics(v).write_text(json.dumps(m))
    with pytest.raises(NetpipeError) as exc:
        records.Metrics.read(paths.metrics(v), "metrics file")
    msg = str(exc.value)
    assert "\n" not in msg and str(paths.metrics(v)) in msg and "top1" in msg and "rerun" in msg
    capsys.readouterr()
    summary = report.run(params.load("params.yaml"))
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if str(paths.metrics(v)) in line], err
    assert summary["variants"][v]["top1"] is None and v in summary["missing"]
    assert summary["variants"][v]["have"]["metrics"] is False


def test_export_refuses_outdated_metrics_in_one_line(pipeline_project, tmp_path, monkeypatch):
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    v = next(iter(raw["variants"]))
    m = json.loads(paths.metrics(v).read_text())
    del m["checkpoint"]
    paths.metrics(v).write_text(json.dumps(m))
    from pipeline import export

    with pytest.raises(NetpipeError, match=r"checkpoint.*rerun"):
        export.run(params.load("params.yaml"), v)
