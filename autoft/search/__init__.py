"""Search spaces (hparam.yaml) and strategies (HAZero = CMA-ES, PSHE2, random, TPE, auto) behind ask/tell.

No I/O happens in here apart from reading hparam.yaml in ``SearchSpace.load``; the tuner owns
processes, the journal and resume (it replays told rewards into a fresh, seeded strategy).
"""

from autoft.search.base import Strategy
from autoft.search.registry import STRATEGIES, make_strategy
from autoft.search.space import Param, SearchSpace

__all__ = ["STRATEGIES", "Param", "SearchSpace", "Strategy", "make_strategy"]
