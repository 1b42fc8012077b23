"""The evaluators: what a trial's command adds to the hyper-parameters, and what a finished
round hands to the next one.

fulltrail: every trial trains from the pretrained model. populationbased (alias modelbased):
from round 1 on, trial number t warm-starts with ``--epochs=1 --model_path <donor>``, the
donors being the best floor(popsize/2) (>= 1) successful trials of the previous round that
saved a model (as PaddleHub 1.4's ModelBasedEvaluator picked them; docs/tuner.md); a round without one keeps the previous donors.
Donors are kept as the journal stores them (paths relative to the output dir) and resolved
against the output dir only when a command is built, so a moved output dir still warm-starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from autoft.tuner.records import TrialRecord

EVALUATORS = {"fulltrail": "fulltrail", "populationbased": "populationbased", "modelbased": "populationbased"}
# Flags populationbased sets on a warm-started trial; the same flags among the trailing options
# would come after them and win (the last flag wins in argparse), so they are left out there.
WARM_START_FLAGS = ("--epochs", "--model_path")


class FullTrail:
    """Every trial from scratch: no donors, no extra flags."""

    name = "fulltrail"

    def __init__(self, popsize: int):
        self.popsize = popsize
        self.donors: List[str] = []

    def donor_for(self, trial_number: int) -> Optional[str]:  # noqa: ARG002 - same signature as PopulationBased
        """The model dir trial ``trial_number`` warm-starts from (None: the pretrained model)."""
        return None

    def trial_argv(self, prefix: Sequence[str], model_dir: Path, hparams: Dict[str, object],
                   options: Sequence[str], donor: Optional[Path]) -> List[str]:
        """PaddleHub 1.4's trial command (docs/tuner.md), values formatted with str(): ``prefix``
        (interpreter, -u, script), [--epochs=1 --model_path <donor>], --saved_params_dir, the
        hyper-parameters, the trailing options."""
        argv = list(prefix)
        if donor is not None:
            argv += ["--epochs=1", "--model_path", str(donor)]
            options = [o for o in options if o.split("=", 1)[0] not in WARM_START_FLAGS]
        argv.append(f"--saved_params_dir={model_dir}")
        argv += [f"--{name}={value}" for name, value in hparams.items()]
        argv += list(options)
        return argv

    def next_donors(self, round_records: Sequence[TrialRecord], has_model: Callable[[TrialRecord], bool]) -> str:
        """Update the donors after a round that ran; returns a console note ('' for none)."""
        return ""

    def replay(self, donors: Sequence[str]) -> None:
        """--resume: take a finished round's donors from its journal line."""
        self.donors = list(donors) if self.name == "populationbased" else []


class PopulationBased(FullTrail):
    """Warm starts from the best half of the previous round (see the module docstring)."""

    name = "populationbased"

    def donor_for(self, trial_number: int) -> Optional[str]:
        return self.donors[trial_number % len(self.donors)] if self.donors else None

    def next_donors(self, round_records: Sequence[TrialRecord], has_model: Callable[[TrialRecord], bool]) -> str:
        ok = sorted((r for r in round_records if r.ok and has_model(r)), key=lambda r: (-r.score, r.idx))
        best = [r.model_dir for r in ok[: max(1, self.popsize // 2)]]
        if best:
            self.donors = best
            return ""
        k = round_records[0].round if round_records else 0
        return (f"Round {k} left no successful saved model: the next round "
                + ("keeps the previous donors." if self.donors else "trains from scratch."))


def make_evaluator(name: str, popsize: int) -> FullTrail:
    """The evaluator for a canonical name (see EVALUATORS)."""
    return PopulationBased(popsize) if EVALUATORS[name] == "populationbased" else FullTrail(popsize)
