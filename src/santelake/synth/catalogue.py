"""Drawing reference items (acts, drugs, diagnoses...) that suit each person's sex and age."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from santelake.synth.reference import ANY_SEX, FEMALE, MALE, MAX_AGE, Eligible

Int64s = npt.NDArray[np.int64]
Item = TypeVar("Item", bound=Eligible)


class Catalogue(Generic[Item]):
    """Items with one cumulative distribution per (sex, age) group, built once."""

    def __init__(self, name: str, items: Sequence[Item]) -> None:
        self.items = tuple(items)
        weights = np.zeros((2, MAX_AGE + 1, len(self.items)))
        for column, item in enumerate(self.items):
            for row, sex in enumerate((MALE, FEMALE)):
                if item.sex in (ANY_SEX, sex):
                    weights[row, item.min_age : item.max_age + 1, column] = item.weight
        totals = weights.sum(axis=2, keepdims=True)
        if (totals == 0).any():
            sex_row, age = np.argwhere(totals[:, :, 0] == 0)[0]
            raise ValueError(f"the {name} catalogue has nothing for sex {sex_row + 1} aged {age}")
        groups = 2 * (MAX_AGE + 1)
        self._weights = weights.reshape(groups, len(self.items))
        self._cumulative = (weights.cumsum(axis=2) / totals).reshape(groups, len(self.items))

    def draw(self, rng: np.random.Generator, sex: Int64s, age: Int64s) -> Int64s:
        """The index of one item per row, for people of the given sex (1, 2) and age."""
        group = _group(sex, age)
        picked: Int64s = (rng.random(len(group))[:, np.newaxis] >= self._cumulative[group]).sum(axis=1)
        # A draw within rounding error of 1.0 must still land on the last item.
        return np.minimum(picked, len(self.items) - 1)

    def draw_distinct(self, rng: np.random.Generator, sex: Int64s, age: Int64s, count: int, excluded: Int64s) -> Int64s:
        """Up to ``count`` different items per row, weighted, without replacement.

        Returns a (rows, count) matrix of item indices, filled from the left; -1 marks a
        slot left empty because the row had fewer suitable items. ``excluded`` holds one
        item index per row that must not be drawn, or -1.
        """
        weights = self._weights[_group(sex, age)]
        rows = np.flatnonzero(excluded >= 0)
        weights[rows, excluded[rows]] = 0
        # The smallest exponential(1) / weight keys are a weighted sample without replacement.
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=weights.shape) / weights
        chosen = np.argsort(keys, axis=1, kind="stable")[:, :count]
        suitable = np.isfinite(np.take_along_axis(keys, chosen, axis=1))
        return np.where(suitable, chosen, -1)


def _group(sex: Int64s, age: Int64s) -> Int64s:
    return (sex - 1) * (MAX_AGE + 1) + np.clip(age, 0, MAX_AGE)
