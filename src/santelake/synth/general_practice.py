"""GP consultations: one row per consultation or visit by a general practitioner."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from santelake.synth import columns
from santelake.synth.catalogue import Catalogue
from santelake.synth.identifiers import rpps_numbers
from santelake.synth.persons import GPS_PER_DEPARTMENT, START_DAY, Persons, age_rates
from santelake.synth.reference import CONSULTATION_TYPES, PERIOD_START, TELECONSULTATION_FROM
from santelake.synth.sources import GP_CONSULTATIONS

CONSULTATIONS_PER_PERSON = 4.0
_OWN_GP_SHARE = 0.9
"""Share of consultations with the person's own GP; the rest see another GP of the department."""
_YEARLY_RATE = age_rates((0, 2, 6, 18, 40, 65, 80, 100), (2.5, 1.5, 0.8, 0.6, 0.8, 1.3, 1.8, 1.8))
_TYPES = Catalogue("consultation type", CONSULTATION_TYPES)
_CODES = [kind.code for kind in CONSULTATION_TYPES]
_CODE_TEXT = columns.strings(_CODES)
_TELECONSULTATION = np.array([code == "TC" for code in _CODES])
_OFFICE_VISIT = _CODES.index("G")
_TELECONSULTATION_DAY = START_DAY + (TELECONSULTATION_FROM - PERIOD_START).days


def consultations(rng: np.random.Generator, persons: Persons) -> pa.Table:
    owner = persons.draw_events(rng, CONSULTATIONS_PER_PERSON, _YEARLY_RATE)
    day = persons.care_days(rng, owner)
    kind = _TYPES.draw(rng, persons.sex[owner], persons.age_on(owner, day))
    kind = np.where(_TELECONSULTATION[kind] & (day < _TELECONSULTATION_DAY), _OFFICE_VISIT, kind)
    rows = len(owner)

    other_gp = persons.department_index[owner] * GPS_PER_DEPARTMENT + rng.integers(0, GPS_PER_DEPARTMENT, rows)
    gp = np.where(rng.random(rows) < _OWN_GP_SHARE, persons.gp[owner], other_gp)

    return columns.assemble(
        GP_CONSULTATIONS,
        {
            "CNS_ID": columns.row_ids(persons.block, rows),
            "BEN_NIR": persons.nir_strings(owner),
            "CNS_DTE": columns.days(day),
            "GP_RPPS": columns.fixed_digits(rpps_numbers(gp), 11),
            "CNS_TYP": columns.pick(_CODE_TEXT, kind),
        },
    )
