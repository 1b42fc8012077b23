"""The resume checkpoint of a train.py run: what it takes to continue bit for bit after a kill.

One directory (``<checkpoint_dir>/resume``, or ``<saved_params_dir>.resume`` for a tuner
trial) holds the latest state only:

    arrays-<step>.safetensors   model weights ("model/<name>"), optimizer tensors ("optim/<name>",
                                Paddle's accumulator names), numpy's RNG key ("rng/numpy")
    state.json                  the commit point: format, the arrays file's name, position
                                (step, epoch, micro-batches of that epoch done), the best keeper,
                                history, RNG states (python, numpy scalars, paddle generators),
                                GradScaler state, the run's TrainConfig

The arrays file is written first (temp name, fsync, rename), then state.json (same), then
older arrays files are deleted: a kill at any point leaves the previous or the new state,
never a mix. No pickle: tensors in safetensors, everything else JSON.

Paddle's generator state: ``GeneratorState.__getstate__`` gives (device, seed, offset[, CPU
engine]); Paddle 3.x includes the CPU engine (mt19937_64, as text), Paddle 2.6 does not. On
such a Paddle on CPU the loop reseeds the generator from (seed, step) at every optimizer
step instead (``reseed_each_step``), so that a resumed run draws the same dropout masks.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from autoft import atomic
from autoft.errors import AutoftError

STATE_FILE = "state.json"
FORMAT = 1


@dataclass
class Position:
    """Where the run is: ``step`` optimizer steps done, ``micro`` micro-batches of ``epoch`` done."""

    step: int = 0
    epoch: int = 1
    micro: int = 0


@dataclass
class ResumeState:
    position: Position
    keeper: dict
    run: dict  # history, first_loss, elapsed_seconds
    config: dict
    rng: dict
    scaler: Optional[dict]
    arrays: dict = field(repr=False)
    directory: Path = Path(".")


# ---------------------------------------------------------------- RNG


def seed_all(paddle, seed: int) -> None:
    """Seed python's random, numpy's global RNG and Paddle's generators."""
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def engine_exportable(paddle) -> bool:
    """True when Paddle's CPU generator state includes its engine (Paddle 3.x)."""
    return len(paddle.get_rng_state()[0].__getstate__()) >= 4


def step_seed(seed: int, step: int) -> int:
    """The generator seed of optimizer step ``step`` when the engine cannot be exported."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, np.uint64)[0] >> 1)


def _generator_states(states) -> list:
    out = []
    for s in states:
        t = list(s.__getstate__())
        out.append([bytes(v).decode("latin-1") if isinstance(v, list) else v for v in t])
    return out


def _restore_generators(paddle, saved: list) -> list:
    from paddle.base import core

    states = []
    for t in saved:
        st = core.GeneratorState.__new__(core.GeneratorState)
        st.__setstate__(tuple(list(v.encode("latin-1")) if isinstance(v, str) else v for v in t))
        states.append(st)
    return states


def capture_rng(paddle, device: str) -> tuple:
    """(JSON part, arrays part) of every RNG the run draws from."""
    version, key, gauss = random.getstate()
    kind, np_key, pos, has_gauss, cached = np.random.get_state()
    rng = {"python": [version, list(key), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)],
           "paddle": _generator_states(paddle.get_rng_state())}
    if device == "gpu":
        rng["cuda"] = _generator_states(paddle.get_cuda_rng_state())
    return rng, {"rng/numpy": np.asarray(np_key, dtype=np.uint32)}


def restore_rng(paddle, rng: dict, arrays: dict, device: str) -> None:
    version, key, gauss = rng["python"]
    random.setstate((version, tuple(key), gauss))
    kind, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, arrays["rng/numpy"], pos, has_gauss, cached))
    paddle.set_rng_state(_restore_generators(paddle, rng["paddle"]))
    if device == "gpu" and "cuda" in rng:
        paddle.set_cuda_rng_state(_restore_generators(paddle, rng["cuda"]))


# ---------------------------------------------------------------- optimizer and scaler


def optimizer_arrays(opt) -> dict:
    """Paddle's optimizer state_dict as ``optim/<name>`` arrays (AdamW: moments, beta powers)."""
    out = {}
    for name, value in opt.state_dict().items():
        if isinstance(value, dict):  # master_weights (multi-precision): name -> tensor
            out.update({f"optim/{name}/{k}": np.asarray(v.numpy()) for k, v in value.items()})
        elif hasattr(value, "numpy"):
            out[f"optim/{name}"] = np.asarray(value.numpy())
    return out


def restore_optimizer(opt, arrays: dict) -> None:
    """Hand the saved accumulators to ``opt``; Paddle assigns them as it creates each one
    (their names are the ones this process generates again: same model, same order)."""
    state: dict = {}
    for key, value in arrays.items():
        if not key.startswith("optim/"):
            continue
        name = key[len("optim/"):]
        if "/" in name:
            outer, inner = name.split("/", 1)
            state.setdefault(outer, {})[inner] = value
        else:
            state[name] = value
    if state:
        opt.set_state_dict(state)


def scaler_state(scaler) -> Optional[dict]:
    if scaler is None:
        return None
    return {k: (np.asarray(v).astype(np.float32).ravel().tolist() if hasattr(v, "shape") else v)
            for k, v in scaler.state_dict().items()}


def restore_scaler(scaler, saved: Optional[dict]) -> None:
    if scaler is not None and saved:
        scaler.load_state_dict({k: (np.asarray(v, dtype=np.float32) if isinstance(v, list) else v)
                                for k, v in saved.items()})


# ---------------------------------------------------------------- files


def _write_arrays(path: Path, arrays: dict) -> None:
    from safetensors.numpy import save_file

    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    atomic.write_with(path, lambda tmp: save_file(contiguous, str(tmp)), fsync=True)


def save(directory: Path, position: Position, arrays: dict, keeper: dict, run: dict, config: dict,
         rng: dict, scaler: Optional[dict]) -> None:
    """Write the new latest state atomically (arrays, then state.json), then drop older arrays."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"arrays-{position.step}.safetensors"
    _write_arrays(directory / name, arrays)
    state = {"format": FORMAT, "arrays": name, "position": vars(position), "keeper": keeper, "run": run,
             "config": config, "rng": rng, "scaler": scaler}
    atomic.write_text(directory / STATE_FILE, json.dumps(state, ensure_ascii=False, default=str), fsync=True)
    for old in directory.glob("arrays-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load(directory: Path) -> Optional[ResumeState]:
    """The saved state, or None when there is none. A damaged one is an AutoftError naming it."""
    directory = Path(directory)
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        arrays = load_file(str(directory / raw["arrays"]))
        return ResumeState(Position(**raw["position"]), raw["keeper"], raw["run"], raw["config"], raw["rng"],
                           raw.get("scaler"), arrays, directory)
    except Exception as exc:  # any damage: the user decides (--no_resume), nothing is guessed
        raise AutoftError(f"{path}: cannot resume from this state ({type(exc).__name__}: {exc}); "
                          "pass --no_resume to start over") from None


def clear(directory: Path) -> None:
    """Delete the resume state (after a finished run, or with --no_resume)."""
    import shutil

    directory = Path(directory)
    (directory / STATE_FILE).unlink(missing_ok=True)  # the commit point goes first
    shutil.rmtree(directory, ignore_errors=True)
