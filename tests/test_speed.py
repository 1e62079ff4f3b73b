"""pipeline/speed.py: what a CPU training run uses (bf16 autocast, channels-last), decided by measurement, cached per
machine and variant, never touching the run's random state."""

from __future__ import annotations

import json

import torch
from torch import nn

from pipeline import speed


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def _choose(net=None, **kw):
    args = dict(amp=True, channels_last=True, compile=False, arch="tiny", options={}, input_shape=(3, 8, 8),
                num_classes=10, batch=4)
    args.update(kw)
    return speed.choose(net or _net(), torch.device("cpu"), **args)


def test_nothing_allowed_means_fp32_without_measuring(tmp_path, monkeypatch):
    monkeypatch.setenv("NETPIPE_CACHE_DIR", str(tmp_path))
    s = _choose(amp=False, channels_last=False)
    assert (s.amp, s.channels_last, s.compile) == (False, False, False)
    assert s.measured == {} and "bf16 off in params" in s.reason
    assert not speed.cache_path().exists()


def test_measured_choice_is_the_fastest_allowed_and_cached(tmp_path, monkeypatch, cpu_kind):
    monkeypatch.setenv("NETPIPE_CACHE_DIR", str(tmp_path))
    net = _net()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    s = _choose(net)
    assert torch.equal(torch.get_rng_state(), before)  # the measurement leaves the run's random state alone
    combos = {"fp32", "fp32+channels_last"} | ({"bf16", "bf16+channels_last"} if speed.bf16_native() else set())
    assert set(s.measured) == combos and all(v > 0 for v in s.measured.values())
    chosen = ("bf16" if s.amp else "fp32") + ("+channels_last" if s.channels_last else "")
    best = max(s.measured, key=s.measured.get)
    if chosen == "fp32":  # fp32 stays unless something beats it by the margin
        assert s.measured[best] < speed.MARGIN * s.measured["fp32"] or best == "fp32", s
    else:
        assert chosen == best and s.measured[best] >= speed.MARGIN * s.measured["fp32"], s
    assert "measured" in s.reason
    again = _choose()
    assert (again.amp, again.channels_last) == (s.amp, s.channels_last) and "cached" in again.reason
    assert len(json.loads(speed.cache_path().read_text())) == 1
    other = _choose(channels_last=False)
    assert not other.channels_last
    entries = len(json.loads(speed.cache_path().read_text()))
    if speed.bf16_native():  # bf16 against fp32 is measured: another allowed set is another cache entry
        assert entries == 2 and "measured" in other.reason and set(other.measured) == {"fp32", "bf16"}, other
    else:  # fp32 is all that is left: nothing to measure, nothing cached
        assert entries == 1 and other.measured == {} and not other.amp and "nothing else allowed" in other.reason, other


def test_bf16_needs_native_support(tmp_path, monkeypatch, cpu_kind):
    monkeypatch.setenv("NETPIPE_CACHE_DIR", str(tmp_path))
    s = _choose(channels_last=False)
    if speed.bf16_native():
        assert "bf16" in s.measured
    else:
        assert not s.amp and "no native bf16" in s.reason


def test_cuda_keeps_what_params_say():
    s = speed.choose(_net(), torch.device("cuda"), amp=True, channels_last=False, compile=True, arch="tiny",
                     options={}, input_shape=(3, 8, 8), num_classes=10, batch=4)
    assert (s.amp, s.channels_last, s.compile) == (True, False, True) and s.measured == {}


def test_autocast_runs_bf16_on_the_cpu_only_when_asked():
    x = torch.randn(2, 4)
    lin = nn.Linear(4, 3)
    with speed.autocast(torch.device("cpu"), True):
        assert lin(x).dtype == torch.bfloat16
    with speed.autocast(torch.device("cpu"), False):
        assert lin(x).dtype == torch.float32
