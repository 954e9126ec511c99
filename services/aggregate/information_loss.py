"""Information loss of the gemeente feeds: what a policy advisor gets, against the true counts.

Disclosure control is only half done when it protects: the feeds must stay
worth reading. This measures, per gemeente size class (by the gemeente's
trajectories in the period), over every population cell of the feed:

* the share of cells published (n shown), of those with any trajectory;
* the share of trajectories in published cells (each view counted alike);
* the share of counts published (n, every category, every number of
  responses, every numerator), of those above zero;
* the mean relative error of the published counts, |shown - true| / true.

It compares any two count rules; ``ttp disclosure loss`` compares the earlier
method (``suppression_rule``: the stored suppression pattern, every other
count exact) with the cell-key method every third-party output now uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from sqlalchemy import Connection

from services.aggregate.cell_key import CountRule
from services.aggregate.cells import breakdown_of
from services.aggregate.disclosure import FAMILY_BIT, VALUE_FAMILIES
from services.aggregate.feeds import StoredCell, gemeente_output, load_cells, output_keys, population_cells, window_end
from services.aggregate.indicators import LAYOUT, WINDOWS
from services.aggregate.recompute import load_domains

#: Gemeente size classes by trajectories ended in the period: (label, lowest).
SIZE_CLASSES: Final[tuple[tuple[str, int], ...]] = (
    ("< 100", 0), ("100-499", 100), ("500-1999", 500), ("2000+", 2000),
)

#: A rule per population cell, from its stored cell.
RuleOf = Callable[[StoredCell], CountRule]


def suppression_rule(threshold: int) -> RuleOf:
    """The earlier method, kept as the baseline: a cell hidden by the stored suppression pattern
    (or below the threshold) shows nothing, a value family withheld for too few responses shows
    no responses (so no figure), and every other count is exact."""
    names = {fam.name: "+".join(LAYOUT[i] for i in fam.columns) for fam in VALUE_FAMILIES
             if fam.name != "geenNieuweStart.volgensPlan"}  # its responses are reason 01: shown in uitval

    def of(stored: StoredCell) -> CountRule:
        hidden = stored.suppressed or int(stored.counts[0]) < threshold
        withheld = {name for fam, name in names.items() if stored.withheld & FAMILY_BIT[fam]}

        def rule(value: int, name: str) -> int | None:
            return None if hidden or name in withheld else value

        return rule

    return of


@dataclass
class Loss:
    gemeenten: int = 0
    cells: int = 0
    cells_published: int = 0
    trajectories: int = 0
    trajectories_published: int = 0
    counts: int = 0
    counts_published: int = 0
    relative_error: float = 0.0

    def add(self, other: Loss) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def share_cells(self) -> float:
        return self.cells_published / self.cells if self.cells else 0.0

    @property
    def share_trajectories(self) -> float:
        return self.trajectories_published / self.trajectories if self.trajectories else 0.0

    @property
    def share_counts(self) -> float:
        return self.counts_published / self.counts if self.counts else 0.0

    @property
    def mean_relative_error(self) -> float:
        return self.relative_error / self.counts_published if self.counts_published else 0.0


def size_class(trajectories: int) -> str:
    return [label for label, low in SIZE_CLASSES if trajectories >= low][-1]


def gemeente_loss(conn: Connection, period: str, gemeente: str, rule_of: RuleOf, *,
                  as_of: dt.date) -> tuple[Loss, int]:
    """The loss of one gemeente's feed under one rule, and the gemeente's trajectories."""
    output = gemeente_output(gemeente)
    domains = load_domains(conn, period)
    stored = load_cells(conn, period, output)
    observable = {w: as_of > window_end(period, w) for w in WINDOWS}
    zero = StoredCell(np.zeros(len(LAYOUT), dtype=np.int64), False, 0)
    loss = Loss(gemeenten=1)
    for key in output_keys(output, domains):
        s = stored.get(key, zero)
        n = int(s.counts[0])
        if n == 0:
            continue
        inner = rule_of(s)
        seen: list[tuple[int, int | None]] = []

        def recording(value: int, name: str, inner: CountRule = inner, seen: list[tuple[int, int | None]] = seen
                      ) -> int | None:
            shown = inner(value, name)
            seen.append((value, shown))
            return shown

        population_cells(key, breakdown_of(key, scope_dims=output.scope_dims), s.counts, recording, observable)
        published = seen[0][1] is not None  # the first count asked for is n
        loss.cells += 1
        loss.trajectories += n
        if published:
            loss.cells_published += 1
            loss.trajectories_published += n
        for true, shown in seen:
            if true <= 0:
                continue
            loss.counts += 1
            if shown is not None:
                loss.counts_published += 1
                loss.relative_error += abs(shown - true) / true
    total = stored.get(((gemeente,), (), (), ()), zero)
    return loss, int(total.counts[0])


def loss_by_size_class(conn: Connection, period: str, rule_of: RuleOf, *, as_of: dt.date) -> dict[str, Loss]:
    """Every gemeente's feed, summed per size class (and "all")."""
    domains = load_domains(conn, period)
    out: dict[str, Loss] = {label: Loss() for label, _ in SIZE_CLASSES}
    out["all"] = Loss()
    for g in domains.gemeenten:
        loss, total = gemeente_loss(conn, period, g, rule_of, as_of=as_of)
        if not total:
            continue
        out[size_class(total)].add(loss)
        out["all"].add(loss)
    return out
