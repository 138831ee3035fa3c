"""The Postgres benches take their contenders' turns in every order (bench/pg_rows.py)."""

from __future__ import annotations

import sys
from collections import Counter
from itertools import pairwise, permutations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_rows import orders

NAMES = ["lash", "floor", "peer"]


def test_each_contender_follows_each_other_equally_often() -> None:
    taken = orders(NAMES)
    assert taken[0] == NAMES  # the run's own order comes first
    follows = Counter(pair for order in taken for pair in pairwise(order))
    assert set(follows) == set(permutations(NAMES, 2))
    assert len(set(follows.values())) == 1
