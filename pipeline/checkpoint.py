"""The best/last/resume policy of one training run, in one place (timm's `CheckpointSaver` is the model).

Files (pipeline/paths.py):
- models/resume/VARIANT.pt       the run's whole state (weights, optimizer, scheduler, TrainState): after every
                                 epoch of a run longer than one epoch, and wherever a signal stopped it;
- models/resume/VARIANT.best.pt  the checkpoint to keep so far: the best validation accuracy (keep: best), or the
                                 latest epoch (keep: last). It lives beside the resume state because `dvc repro`
                                 deletes a stage's outputs before it reruns the stage: an interrupted run must not
                                 lose its best epoch;
- models/VARIANT.pt              the kept checkpoint, linked into place when the run completes; the two resume
                                 files are then removed, so a later run trains from scratch instead of "resuming" a
                                 finished one.
A resume checkpoint is used only by the very run that wrote it: the same params and data (config hash) and the
same training code (code hash); anything else starts over, saying why. Rank 0 alone reads and writes
(DistributedDataParallel ranks get what it read through a broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import distributed, fileio, paths
from .errors import NetpipeError
from .model import load_checkpoint, save


@dataclass
class Checkpointer:
    variant: str
    keep: str  # "best" (by validation accuracy) or "last"
    config_hash: str
    code_hash: str
    main: bool  # rank 0: the one that writes

    # ---- reading ---------------------------------------------------------------------------------------------
    def same_run(self, ck: dict | None) -> bool:
        """A resume checkpoint of this very run: the same params and data, and the same training code."""
        return ck is not None and ck.get("config_hash") == self.config_hash and ck.get("code_hash") == self.code_hash

    def read_resume(self, d: distributed.Dist) -> dict | None:
        """The resume checkpoint, if any: rank 0 reads it and hands it to the other ranks (no shared disk needed).
        A run that completed an epoch must still have its best-so-far file (not deleted by hand)."""
        path = paths.last_checkpoint(self.variant)
        ck: Any = None
        if self.main and path.exists():
            try:
                ck = load_checkpoint(path, "resume checkpoint")
            except NetpipeError as exc:
                ck = f"{exc}; delete it to start over"
            else:
                if self.same_run(ck) and ck.get("best_epoch", -1) > 0 and not paths.best_resume(self.variant).exists():
                    ck = self.lost_best()
        ck = d.broadcast(ck)
        if isinstance(ck, str):
            raise NetpipeError(ck)
        return ck

    def why_not(self, ck: dict) -> str:
        """What changed since another run wrote `ck`; its best file is dropped (no candidate for this run)."""
        if self.main:
            paths.best_resume(self.variant).unlink(missing_ok=True)
        what = "params" if ck.get("config_hash") != self.config_hash else "the training code (pipeline/, dvc.yaml's deps)"
        return f"{what} changed since {paths.last_checkpoint(self.variant)} was written: starting over"

    def lost_best(self) -> str:
        return (f"{paths.best_resume(self.variant)} is missing: the best checkpoint of this run is lost; delete "
                f"{paths.last_checkpoint(self.variant)} to train {self.variant} again")

    # ---- writing ---------------------------------------------------------------------------------------------
    def save_resume(self, state_dict: Callable[[], dict]) -> None:
        """The resume checkpoint (`state_dict()` is built on rank 0 only: it costs a copy of the weights)."""
        if self.main:
            save(paths.last_checkpoint(self.variant), state_dict())

    def after_epoch(self, state, epoch: int, val_acc: float, best: Callable[[], dict], resume: Callable[[], dict],
                    one_epoch: bool) -> None:
        """The end of epoch `epoch` (1-based): keep its checkpoint when it is the best so far (or with keep: last),
        then save the resume state. A one-epoch run (the quick check) saves none: killed before its outputs are
        written, it trains its epoch again; longer runs save every epoch, so that a redone last epoch need not
        repeat a nondeterministic (GPU) run and the summary names the epoch the kept file holds."""
        if val_acc > state.best_val or self.keep == "last":
            state.best_val, state.best_epoch = val_acc, epoch
            if self.main:
                save(paths.best_resume(self.variant), best())
        state.epoch, state.step = epoch, 0
        state.partial = state.gen_state = state.rng_state = None  # mid-epoch only
        if not one_epoch:
            self.save_resume(resume)

    def finish(self) -> None:
        """Link the kept checkpoint into place (models/VARIANT.pt), then drop the resume files. Also when a resumed
        run had no epoch left to train: `dvc repro` deleted the outputs of a run interrupted after its last epoch."""
        best = paths.best_resume(self.variant)
        if not best.exists():
            raise NetpipeError(self.lost_best())
        fileio.write_with(paths.checkpoint(self.variant), lambda tmp: fileio.link_or_copy(best, tmp))

    def discard(self) -> None:
        fileio.discard(paths.last_checkpoint(self.variant))
        fileio.discard(paths.best_resume(self.variant))
