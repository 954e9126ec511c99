"""Guards for the shortcuts the roll-up and the withheld pass take for speed.

The national recompute relies on them giving exactly what the plain way gives:
the key columns' codes (which fix the order of the cells) and a withheld pattern
that does not depend on how the tables happen to be listed.
"""

from __future__ import annotations

import random

import numpy as np

from services.aggregate.cells import BANDS, CellKey
from services.aggregate.disclosure import Protection, Suppressor, withhold_values
from services.aggregate.indicators import LAYOUT
from services.aggregate.rollup import _codes
from services.aggregate.tables import build_tables


def test_codes_match_numpy_unique_of_the_text() -> None:
    column = np.array(["GM0363", None, "GM0014", "GM0363", "None", "0599", None], dtype=object)
    uniques, codes = _codes(column)
    expected_uniques, expected_codes = np.unique(column.astype(str), return_inverse=True)
    assert uniques == expected_uniques.tolist()
    assert codes.tolist() == expected_codes.tolist()


def _small_world() -> tuple[list[str], dict[str, list[str]], list[str]]:
    rng = random.Random(3)
    gemeenten = [f"GM{i:04d}" for i in range(6)]
    pc4s = {g: [f"{1000 + 10 * i + j}" for j in range(rng.randint(0, 4))] for i, g in enumerate(gemeenten)}
    providers = [f"9800{i:04d}" for i in range(5)]
    return gemeenten, pc4s, providers


def test_withheld_pattern_does_not_depend_on_table_order() -> None:
    gemeenten, pc4s, providers = _small_world()
    rng = np.random.default_rng(5)
    tables = build_tables(gemeenten, pc4s, providers, BANDS, lambda _key: int(rng.integers(0, 14)))
    protection = Protection(10, 0.5)
    outcome = Suppressor(tables, protection).run()
    counts_of: dict[CellKey, np.ndarray] = {}
    for table in tables:
        for row in table.key_grid():
            for key in row:
                counts_of.setdefault(key, rng.integers(0, 12, len(LAYOUT)))
    in_order = withhold_values(tables, counts_of, outcome.suppressed, protection)
    shuffled = list(tables)
    random.Random(1).shuffle(shuffled)
    # Listed out of order, the tables of one kind are no longer side by side in the list.
    assert withhold_values(shuffled, counts_of, outcome.suppressed, protection) == in_order
    assert in_order  # the random counts leave some values over few responses
