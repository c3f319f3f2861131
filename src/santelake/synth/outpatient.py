"""Outpatient claims: one row per act billed by a doctor, nurse, lab or other professional."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from santelake.synth import columns
from santelake.synth.catalogue import Catalogue
from santelake.synth.persons import Persons, age_rates
from santelake.synth.reference import ACTS
from santelake.synth.sources import OUTPATIENT_CLAIMS

CLAIMS_PER_PERSON = 10.0
_YEARLY_RATE = age_rates((0, 3, 15, 30, 50, 70, 85, 100), (1.6, 1.0, 0.6, 0.7, 1.0, 1.6, 2.0, 2.0))
_ACTS = Catalogue("outpatient act", ACTS)
_CODE = np.array([act.code for act in ACTS], dtype=np.int64)
_PERFORMER = np.array([act.performer for act in ACTS], dtype=np.int64)
_PRESCRIBER = np.array([act.prescriber for act in ACTS], dtype=np.int64)
_TARIFF = np.array([act.tariff_cents for act in ACTS], dtype=np.float64)
_SPREAD = np.array([act.spread for act in ACTS])
_OVERRUN_SHARE = np.array([act.overrun_share for act in ACTS])
_REIMBURSED_PERCENT = np.array([act.reimbursed_percent for act in ACTS], dtype=np.int64)
_PATIENT_FEE = np.array([act.patient_fee for act in ACTS])
_PATIENT_FEE_CENTS = 100
_ADULT_AGE = 18
# Regularisation lines: a later line with its own id, negative amounts and the id of the line it
# corrects (a cancelled act, a tariff error). Two in three cancel the line whole.
CORRECTED_SHARE = 0.01
_CANCELLED_SHARE = 2 / 3


def claims(rng: np.random.Generator, persons: Persons) -> pa.Table:
    owner = persons.draw_events(rng, CLAIMS_PER_PERSON, _YEARLY_RATE)
    day = persons.care_days(rng, owner)
    age = persons.age_on(owner, day)
    act = _ACTS.draw(rng, persons.sex[owner], age)
    rows = len(owner)

    base = np.rint(_TARIFF[act] * np.exp(_SPREAD[act] * rng.standard_normal(rows))).astype(np.int64)
    overrun = np.where(rng.random(rows) < _OVERRUN_SHARE[act], base * rng.uniform(0.1, 1.0, rows), 0)
    charged = base + np.rint(overrun).astype(np.int64)
    fee = np.where(_PATIENT_FEE[act] & (age >= _ADULT_AGE), _PATIENT_FEE_CENTS, 0)
    reimbursed = np.maximum(base * _REIMBURSED_PERCENT[act] // 100 - fee, 0)

    # Drawn last, so the ordinary lines are those of earlier versions of the generator.
    corrected = np.flatnonzero(rng.random(rows) < CORRECTED_SHARE)
    share = np.where(rng.random(len(corrected)) < _CANCELLED_SHARE, 1.0, rng.uniform(0.1, 0.9, len(corrected)))
    paid_back = np.rint(charged[corrected] * share).astype(np.int64)
    refunded = np.minimum(reimbursed[corrected], np.rint(reimbursed[corrected] * share).astype(np.int64))
    everyone = np.concatenate([np.arange(rows), corrected])
    ids = columns.row_ids(persons.block, rows + len(corrected))
    links = pa.concat_arrays([pa.nulls(rows, pa.string()), ids.take(pa.array(corrected))])

    return columns.assemble(
        OUTPATIENT_CLAIMS,
        {
            "FLX_ID": ids,
            "BEN_NIR": persons.nir_strings(owner[everyone]),
            "EXE_SOI_DTD": columns.days(day[everyone]),
            "PRS_NAT_REF": columns.integers(_CODE[act[everyone]]),
            "PSP_SPE_COD": columns.integers(_PRESCRIBER[act[everyone]]),
            "PSE_SPE_COD": columns.integers(_PERFORMER[act[everyone]]),
            "PRS_PAI_MNT": columns.amounts(np.concatenate([charged, -paid_back])),
            "PRS_REM_MNT": columns.amounts(np.concatenate([reimbursed, -refunded])),
            "FLX_REG_ID": links,
        },
    )
