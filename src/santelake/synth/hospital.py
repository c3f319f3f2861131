"""Hospital stays (PMSI MCO discharge summaries): one row per stay."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from santelake.synth import columns
from santelake.synth.catalogue import Catalogue
from santelake.synth.identifiers import finess_numbers
from santelake.synth.persons import DEPARTMENT_SHARES, DEPARTMENTS, Persons, age_rates
from santelake.synth.reference import COMORBIDITIES, DIAGNOSES
from santelake.synth.sources import HOSPITAL_STAYS

STAYS_PER_PERSON = 0.3
HOSPITALS_PER_DEPARTMENT = 5
_LOCAL_SHARE = 0.85
"""Share of stays in a hospital of the patient's own department."""
_YEARLY_RATE = age_rates((0, 1, 5, 20, 45, 65, 80, 100), (2.0, 0.6, 0.3, 0.5, 0.8, 1.8, 3.0, 3.2))

_DIAGNOSES = Catalogue("main diagnosis", DIAGNOSES)
_COMORBIDITIES = Catalogue("associated diagnosis", COMORBIDITIES)
_STAY_DAYS = np.array([diagnosis.stay_days for diagnosis in DIAGNOSES])
_MAIN_CODES = [diagnosis.code for diagnosis in DIAGNOSES]
_ASSOCIATED_CODES = [comorbidity.code for comorbidity in COMORBIDITIES]
_MAIN_TEXT = columns.strings(_MAIN_CODES)
_ASSOCIATED_TEXT = columns.strings(_ASSOCIATED_CODES)
_SAME_AS_MAIN = np.array([_ASSOCIATED_CODES.index(code) if code in _ASSOCIATED_CODES else -1 for code in _MAIN_CODES])
"""For each main diagnosis, the associated diagnosis with the same code (never coded twice)."""

# Severity levels 1-4: their shares below and from the age of _OLD, how they stretch the
# stay, and the chance of each of up to _MAX_ASSOCIATED associated diagnoses.
_OLD = 75
_SEVERITY_LEVELS = 4
_SEVERITY_CUMULATIVE = np.cumsum([[0.60, 0.25, 0.10, 0.05], [0.35, 0.35, 0.20, 0.10]], axis=1)
_STAY_FACTOR = np.array([0.6, 1.0, 1.8, 3.0])
_ASSOCIATED_CHANCE = np.array([0.10, 0.35, 0.60, 0.80])
_MAX_ASSOCIATED = 4
_GHMS = columns.strings(
    [diagnosis.ghm_root + level for diagnosis in DIAGNOSES for level in ("ABCD" if diagnosis.lettered else "1234")]
)


def stays(rng: np.random.Generator, persons: Persons) -> pa.Table:
    owner = persons.draw_events(rng, STAYS_PER_PERSON, _YEARLY_RATE)
    entry = persons.care_days(rng, owner)
    sex = persons.sex[owner]
    age = persons.age_on(owner, entry)
    rows = len(owner)

    main = _DIAGNOSES.draw(rng, sex, age)
    severity = (rng.random(rows)[:, np.newaxis] >= _SEVERITY_CUMULATIVE[(age >= _OLD).astype(int)]).sum(1)
    severity = np.minimum(severity, _SEVERITY_LEVELS - 1)  # a draw within rounding error of 1.0
    # A patient who dies in hospital leaves it on the day of death.
    leave = np.minimum(entry + rng.poisson(_STAY_DAYS[main] * _STAY_FACTOR[severity]), persons.last_care_day[owner])

    local = rng.random(rows) < _LOCAL_SHARE
    elsewhere = rng.choice(len(DEPARTMENTS), size=rows, p=DEPARTMENT_SHARES)
    department_index = np.where(local, persons.department_index[owner], elsewhere)
    hospital = department_index * HOSPITALS_PER_DEPARTMENT + rng.integers(0, HOSPITALS_PER_DEPARTMENT, rows)

    associated_count = rng.binomial(_MAX_ASSOCIATED, _ASSOCIATED_CHANCE[severity])
    associated = _COMORBIDITIES.draw_distinct(rng, sex, age, _MAX_ASSOCIATED, _SAME_AS_MAIN[main])

    return columns.assemble(
        HOSPITAL_STAYS,
        {
            "RSA_NUM": columns.row_ids(persons.block, rows),
            "NIR_ANO": persons.nir_strings(owner),
            "ETA_NUM": columns.fixed_digits(finess_numbers(DEPARTMENTS[department_index], hospital), 9),
            "ENT_DAT": columns.days(entry),
            "SOR_DAT": columns.days(leave),
            "DGN_PAL": columns.pick(_MAIN_TEXT, main),
            "DGN_ASS": _joined(associated, associated_count),
            "GRG_GHM": columns.pick(_GHMS, main * _SEVERITY_LEVELS + severity),
        },
    )


def _joined(associated: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> pa.Array:
    """The first ``count`` drawn codes of each row joined with '|', empty when none."""
    kept = (associated >= 0) & (np.arange(_MAX_ASSOCIATED) < count[:, np.newaxis])
    offsets = np.r_[0, np.cumsum(kept.sum(axis=1))].astype(np.int32)
    codes = columns.pick(_ASSOCIATED_TEXT, associated[kept])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), codes), "|")
