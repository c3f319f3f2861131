"""Who exists: the beneficiaries of one block, and when each of them can receive care.

The persons of a block are a pure function of (seed, block number, block size), so the
care tables of a block draw their rows against those persons without reading the
beneficiaries back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from santelake.synth import columns
from santelake.synth.errors import SynthError
from santelake.synth.identifiers import nir_keys, shuffle
from santelake.synth.reference import (
    AGE_BANDS_PERCENT,
    DEPARTMENT_POPULATION,
    FEMALE_FIRST_NAMES,
    MALE,
    MALE_FIRST_NAMES,
    MALE_SHARE,
    MAX_AGE,
    PERIOD_END,
    PERIOD_START,
    SURNAMES,
    TWIN_SHARE,
)
from santelake.synth.sources import BENEFICIARIES

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_EPOCH = date(1970, 1, 1)
START_DAY = (PERIOD_START - _EPOCH).days
END_DAY = (PERIOD_END - _EPOCH).days
DAYS_PER_YEAR = 365.25
PERIOD_YEARS = (END_DAY - START_DAY + 1) / DAYS_PER_YEAR
_ALIVE = END_DAY + 1
"""Stands for "no death date": later than any care day."""

GPS_PER_DEPARTMENT = 600
"""Each department has this many GPs; every person has one of their department's as own GP."""

# Mortality over the period: a Gompertz hazard per year, ~2 % at 50 and ~30 % at 80.
_HAZARD_AT_ZERO = 3e-5
_HAZARD_GROWTH = 0.095

# NIR uniqueness by construction. The six commune + order digits number a person within
# its (sex, birth year, birth month, department) group: block x SLOTS + rank of the
# person among its block's persons of that group. Adding the group's own number (the same
# for everyone in the group) and shuffling are both one-to-one within a group, and make
# the digits of neighbouring persons differ.
_SERIALS = 999 * 999
_SLOTS_PER_BLOCK = 9
PERSONS_PER_BLOCK = 1_000
MAX_PERSONS = _SERIALS // _SLOTS_PER_BLOCK * PERSONS_PER_BLOCK

DEPARTMENTS = np.array(list(DEPARTMENT_POPULATION), dtype=np.int64)
DEPARTMENT_SHARES = np.array(list(DEPARTMENT_POPULATION.values()), dtype=np.float64)
DEPARTMENT_SHARES /= DEPARTMENT_SHARES.sum()
_AGE_P = np.repeat(np.array(AGE_BANDS_PERCENT) / 10, 10)
_AGE_P = np.append(_AGE_P, _AGE_P[-1])  # the last band, 90-100, spans eleven ages
_AGE_P /= _AGE_P.sum()
_SURNAME_TEXT = columns.strings(SURNAMES)
_FIRST_NAME_TEXT = columns.strings(MALE_FIRST_NAMES + FEMALE_FIRST_NAMES)


def _zipf(count: int) -> Floats:
    weights = 1 / np.arange(1, count + 1) ** 0.7
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _death_chance(age: Int64s, years: Floats) -> Floats:
    hazard = _HAZARD_AT_ZERO * np.exp(_HAZARD_GROWTH * age)
    return np.asarray(1 - np.exp(-hazard * years), dtype=np.float64)


def age_rates(anchor_ages: tuple[int, ...], multipliers: tuple[float, ...]) -> Floats:
    """Yearly event rate by age (0-100), interpolated between anchors and scaled so that a
    population with the generator's age pyramid averages one event per person over the
    period (a person born during the period only counts the years since birth)."""
    ages = np.arange(MAX_AGE + 1)
    rate = np.interp(ages, anchor_ages, multipliers)
    years = np.minimum(PERIOD_YEARS, ages + 0.5)
    # Those who die during the period live half of it on average.
    exposure_years = years * (1 - _death_chance(ages, years) / 2)
    return np.asarray(rate / float((_AGE_P * rate * exposure_years).sum()), dtype=np.float64)


@dataclass(frozen=True)
class Persons:
    """The persons of one block, one array element per person."""

    block: int
    nir: Int64s
    """The 15-digit NIR (13-digit body then key) as a number."""
    nir_text: pa.Array
    """The same NIRs as strings, made once per block and shared by every row that cites them."""
    sex: Int64s
    birth: Int64s
    """Days since 1970-01-01, as are ``death`` and every other day below."""
    death: Int64s
    department_index: Int64s
    """Position of the person's department in DEPARTMENTS."""
    gp: Int64s
    """The person's own GP, a number in [0, departments x GPS_PER_DEPARTMENT)."""
    surname: Int64s
    first_name: Int64s
    postcode: Int64s
    twin_rank: Int64s

    def __len__(self) -> int:
        return len(self.nir)

    @property
    def first_care_day(self) -> Int64s:
        return np.maximum(self.birth, START_DAY)

    @property
    def last_care_day(self) -> Int64s:
        return np.minimum(self.death, END_DAY)

    @property
    def dead(self) -> npt.NDArray[np.bool_]:
        return self.death <= END_DAY

    def age_on(self, owner: Int64s, day: Int64s) -> Int64s:
        """Whole years of age of person ``owner`` on ``day``."""
        age: Int64s = np.clip((day - self.birth[owner]) * 4 // 1461, 0, MAX_AGE)
        return age

    def draw_events(self, rng: np.random.Generator, per_person: float, yearly_rate_by_age: Floats) -> Int64s:
        """The owner (position in this block) of each event, grouped by person.

        Counts follow a gamma-Poisson law (over-dispersed like real care use) with mean
        ``per_person`` x rate for the person's age x years the person is in the period.
        """
        exposure_years = (self.last_care_day - self.first_care_day + 1) / DAYS_PER_YEAR
        age = self.age_on(np.arange(len(self)), np.full(len(self), END_DAY))
        mean = per_person * yearly_rate_by_age[age] * exposure_years
        shape = 1.5
        counts = rng.poisson(rng.gamma(shape, mean / shape))
        # Caps the rows of a block below what its row ids can number.
        counts = np.minimum(counts, columns.ROWS_PER_BLOCK_LIMIT // PERSONS_PER_BLOCK - 1)
        return np.repeat(np.arange(len(self), dtype=np.int64), counts)

    def care_days(self, rng: np.random.Generator, owner: Int64s) -> Int64s:
        """A day within each owner's life and the period, uniformly."""
        first = self.first_care_day[owner]
        span = self.last_care_day[owner] - first + 1
        return first + (rng.random(len(owner)) * span).astype(np.int64)

    def nir_strings(self, owner: Int64s) -> pa.Array:
        return columns.pick(self.nir_text, owner)


def draw_persons(rng: np.random.Generator, block: int, count: int) -> Persons:
    """The ``count`` persons of block ``block`` (at most PERSONS_PER_BLOCK)."""
    age = rng.choice(MAX_AGE + 1, size=count, p=_AGE_P)
    birth = END_DAY - ((age + rng.random(count)) * DAYS_PER_YEAR).astype(np.int64)
    sex = np.where(rng.random(count) < MALE_SHARE, 1, 2).astype(np.int64)
    department_index = rng.choice(len(DEPARTMENTS), size=count, p=DEPARTMENT_SHARES)
    department = DEPARTMENTS[department_index]

    first = np.maximum(birth, START_DAY)
    exposure_years = (END_DAY - first + 1) / DAYS_PER_YEAR
    dies = rng.random(count) < _death_chance(age, exposure_years)
    death_day = first + (rng.random(count) * (END_DAY - first + 1)).astype(np.int64)

    male_name = rng.choice(len(MALE_FIRST_NAMES), size=count, p=_zipf(len(MALE_FIRST_NAMES)))
    female_name = rng.choice(len(FEMALE_FIRST_NAMES), size=count, p=_zipf(len(FEMALE_FIRST_NAMES)))
    nir = _nirs(block, sex, birth, department)
    return Persons(
        block=block,
        nir=nir,
        nir_text=columns.fixed_digits(nir, 15),
        sex=sex,
        birth=birth,
        death=np.where(dies, death_day, _ALIVE),
        department_index=department_index,
        gp=department_index * GPS_PER_DEPARTMENT + rng.integers(0, GPS_PER_DEPARTMENT, count),
        surname=rng.choice(len(SURNAMES), size=count, p=_zipf(len(SURNAMES))),
        first_name=np.where(sex == MALE, male_name, len(MALE_FIRST_NAMES) + female_name),
        # Postcodes start with the department; the last three digits are not checked
        # against La Poste's list.
        postcode=department * 1000 + rng.integers(0, 100, count) * 10,
        twin_rank=np.where(rng.random(count) < TWIN_SHARE / 2, 2, 1),
    )


def _nirs(block: int, sex: Int64s, birth: Int64s, department: Int64s) -> Int64s:
    born = birth.astype("datetime64[D]")
    year = born.astype("datetime64[Y]").astype(np.int64) + 1970
    month = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
    group = sex * 1_000_000 + (year % 100) * 10_000 + month * 100 + department
    rank = _rank_within(group)
    if rank.max(initial=0) >= _SLOTS_PER_BLOCK:
        raise SynthError(
            f"block {block}: more than {_SLOTS_PER_BLOCK} persons share sex, year and month of "
            "birth and department, so their NIRs cannot be told apart; use another seed"
        )
    serial = shuffle((block * _SLOTS_PER_BLOCK + rank + group) % _SERIALS, _SERIALS)
    body = group * 1_000_000 + (serial // 999 + 1) * 1000 + serial % 999 + 1
    return body * 100 + nir_keys(body)


def _rank_within(group: Int64s) -> Int64s:
    """For each element, how many earlier elements have the same group value."""
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    rank = np.empty_like(group)
    rank[order] = np.arange(len(group)) - run_start
    return rank


def beneficiaries(persons: Persons) -> pa.Table:
    everyone = np.arange(len(persons), dtype=np.int64)
    return columns.assemble(
        BENEFICIARIES,
        {
            "BEN_NIR": persons.nir_strings(everyone),
            "BEN_NOM": columns.pick(_SURNAME_TEXT, persons.surname),
            "BEN_PRENOM": columns.pick(_FIRST_NAME_TEXT, persons.first_name),
            "BEN_NAI_DTE": columns.days(persons.birth),
            "BEN_SEX_COD": columns.integers(persons.sex),
            "BEN_CP": columns.fixed_digits(persons.postcode, 5),
            "BEN_RNG_GEM": columns.integers(persons.twin_rank),
            "BEN_DCD_DTE": columns.days(persons.death, missing=~persons.dead),
        },
    )
