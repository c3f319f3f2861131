"""Pharmacy dispensations: one row per drug box line delivered by a community pharmacy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from santelake.synth import columns
from santelake.synth.catalogue import Catalogue
from santelake.synth.persons import Persons, age_rates
from santelake.synth.reference import DRUGS
from santelake.synth.sources import PHARMACY_DISPENSATIONS

DISPENSATIONS_PER_PERSON = 6.0
_YEARLY_RATE = age_rates((0, 5, 18, 40, 60, 75, 100), (1.0, 0.5, 0.5, 0.9, 1.6, 2.4, 2.6))
_DRUGS = Catalogue("drug", DRUGS)
_CIP13 = columns.strings([drug.cip13 for drug in DRUGS])
_ATC = columns.strings([drug.atc for drug in DRUGS])
_BOXES_P = (0.55, 0.25, 0.10, 0.05, 0.03, 0.02)
"""Share of dispensations of 1, 2, ... 6 boxes."""


def dispensations(rng: np.random.Generator, persons: Persons) -> pa.Table:
    owner = persons.draw_events(rng, DISPENSATIONS_PER_PERSON, _YEARLY_RATE)
    day = persons.care_days(rng, owner)
    drug = _DRUGS.draw(rng, persons.sex[owner], persons.age_on(owner, day))
    boxes = rng.choice(len(_BOXES_P), size=len(owner), p=_BOXES_P) + 1

    return columns.assemble(
        PHARMACY_DISPENSATIONS,
        {
            "DSP_ID": columns.row_ids(persons.block, len(owner)),
            "BEN_NIR": persons.nir_strings(owner),
            "EXE_SOI_DTD": columns.days(day),
            "PHA_CIP_C13": columns.pick(_CIP13, drug),
            "PHA_ATC_CLA": columns.pick(_ATC, drug),
            "PHA_ACT_QSN": columns.integers(boxes),
        },
    )
