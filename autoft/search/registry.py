"""The strategy factory: names -> classes. Kept apart from base.py so that no module imports back."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Type

import numpy as np

from autoft.errors import AutoftError
from autoft.search.auto import Auto
from autoft.search.base import Strategy
from autoft.search.hazero import HAZero
from autoft.search.pshe2 import PSHE2
from autoft.search.random_search import RandomSearch
from autoft.search.tpe import TPE

CLASSES: Dict[str, Type[Strategy]] = {
    "hazero": HAZero, "pshe2": PSHE2, "random": RandomSearch, "tpe": TPE, "auto": Auto,
}
STRATEGIES = tuple(CLASSES)


def make_strategy(
    name: str, x0: Sequence[float], popsize: int, seed: Optional[int] = None,
    snap: Optional[Callable[[np.ndarray], np.ndarray]] = None, **options: Any
) -> Strategy:
    """Build a strategy by name: "hazero" | "pshe2" | "random" | "tpe" | "auto" (case-insensitive).

    ``x0`` is the encoded init point (``SearchSpace.init_point()``). Options: hazero ``sigma0``
    (0.2); pshe2 ``alpha`` (0.5), ``epsilon`` (0.2), ``legacy_shared_momentum`` (False); tpe
    ``n_startup_trials`` (10). ``snap`` (``SearchSpace.snap``: the point a trial really runs) is
    used by the strategies that avoid proposing a trial already run (auto); the others ignore it, so
    HAZero and PSHE2 stay PaddleHub's. Raises AutoftError for an unknown name or option, for HAZero with
    fewer than 2 hyper-parameters or popsize < 2, and for tpe without Optuna installed.
    """
    key = str(name).strip().lower()
    if key not in CLASSES:
        raise AutoftError(f"unknown tuning strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    cls = CLASSES[key]
    allowed = cls.OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise AutoftError(
            f"unknown option(s) {unknown} for strategy {key}; accepted: {', '.join(allowed) or 'none'}"
        )
    if snap is not None and cls.uses_snap:
        options["snap"] = snap
    return cls(x0, popsize, seed, **options)
