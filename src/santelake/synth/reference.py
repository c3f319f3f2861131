"""The small, embedded reference world the generator draws from.

Codes are real where a reader would check them (ICD-10, ATC, department numbers, GHM
shape); weights are rough relative frequencies, not statistics. Identifiers that would
need a licensed repository (CIP13, FINESS, RPPS) have the real shape and check digit but
are synthetic. Every weight is relative within the persons an item applies to (its sex
and age range), so a rare-but-exclusive item such as a delivery can still dominate its
own group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from santelake.synth.identifiers import ean13

PERIOD_START = date(2019, 1, 1)
PERIOD_END = date(2024, 12, 31)
"""Care happens between these days, inclusive; ages are measured at PERIOD_END."""

MAX_AGE = 100
ANY_SEX = 0
MALE = 1
FEMALE = 2


@dataclass(frozen=True, kw_only=True)
class Eligible:
    """How often an item is drawn, and for whom (sex, age at the event, inclusive)."""

    weight: float
    sex: int = ANY_SEX
    min_age: int = 0
    max_age: int = MAX_AGE


# Share of the population (%) by ten-year age band at PERIOD_END, first band 0-9 and the
# last one 90-100 (France, INSEE estimates rounded).
AGE_BANDS_PERCENT = (10.9, 12.2, 11.2, 12.1, 12.6, 13.1, 12.0, 9.6, 4.6, 1.3)
MALE_SHARE = 0.484
TWIN_SHARE = 0.015

# Metropolitan departments and their population in thousands (INSEE, rounded). Corsica
# (2A, 2B) is left out because its NIR place digits are not numeric.
DEPARTMENT_POPULATION: dict[int, int] = {
    1: 657, 2: 530, 3: 335, 4: 165, 5: 141, 6: 1094, 7: 329, 8: 270, 9: 153, 10: 310,
    11: 374, 12: 279, 13: 2043, 14: 694, 15: 144, 16: 352, 17: 651, 18: 302, 19: 240,
    21: 534, 22: 600, 23: 116, 24: 413, 25: 543, 26: 516, 27: 599, 28: 431, 29: 915, 30: 748,
    31: 1400, 32: 191, 33: 1623, 34: 1176, 35: 1079, 36: 219, 37: 610, 38: 1271, 39: 259,
    40: 413, 41: 329, 42: 765, 43: 227, 44: 1429, 45: 680, 46: 174, 47: 331, 48: 76, 49: 818,
    50: 496, 51: 566, 52: 172, 53: 307, 54: 733, 55: 184, 56: 759, 57: 1046, 58: 204, 59: 2608,
    60: 829, 61: 279, 62: 1466, 63: 662, 64: 682, 65: 229, 66: 479, 67: 1140, 68: 767, 69: 1875,
    70: 236, 71: 551, 72: 566, 73: 436, 74: 826, 75: 2166, 76: 1255, 77: 1421, 78: 1448,
    79: 375, 80: 571, 81: 389, 82: 260, 83: 1076, 84: 561, 85: 685, 86: 438, 87: 373, 88: 365,
    89: 337, 90: 141, 91: 1301, 92: 1624, 93: 1644, 94: 1407, 95: 1249,
}  # fmt: skip

# Most frequent first; the generator gives them Zipf-like weights.
SURNAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Müller", "Mercier", "Guérin", "Boyer", "Blanc", "Gauthier", "Chevalier", "Clément",
    "Gérard", "Ménard", "Benoît", "Hébert", "Nguyen", "Da Silva", "Le Goff", "Noël",
    "Brière", "Garçon", "Besançon", "Benhaïm", "Joubert", "Barbé",
)  # fmt: skip
MALE_FIRST_NAMES = (
    "Jean", "Pierre", "Michel", "Philippe", "Nicolas", "Alain", "François", "Frédéric",
    "Stéphane", "Sébastien", "Jérôme", "Thierry", "Hervé", "Cédric", "Loïc", "Gaël", "Benoît",
    "Raphaël", "Lucas", "Hugo", "Léo", "Gabriel", "Théo", "Noé", "Mathéo", "Joël", "Mohamed",
)  # fmt: skip
FEMALE_FIRST_NAMES = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Valérie", "Céline",
    "Hélène", "Agnès", "Élodie", "Aurélie", "Mélanie", "Anaïs", "Chloé", "Léa", "Emma", "Jade",
    "Louise", "Inès", "Zoé", "Maëlle", "Gaëlle", "Noémie", "Héloïse", "Béatrice", "Laëtitia",
    "Fatima",
)  # fmt: skip


@dataclass(frozen=True)
class Act(Eligible):
    """An outpatient act (PRS_NAT_REF) as one kind of professional bills it."""

    code: int
    performer: int
    """PSE_SPE_COD: 1 GP, 3 cardiology, 5 dermatology, 6 radiology, 7 gynaecology, 11 ENT,
    12 paediatrics, 14 rheumatology, 15 ophthalmology, 19 dentist, 24 nurse,
    26 physiotherapist, 28 speech therapist, 33 psychiatry, 38 medical biologist."""
    prescriber: int
    """PSP_SPE_COD: the performer itself for a consultation, usually the GP otherwise."""
    tariff_cents: int
    reimbursed_percent: int
    overrun_share: float
    """Share of acts billed with extra fees above the tariff (never reimbursed)."""
    spread: float = 0.0
    """Log-normal spread of the billed base around the tariff (lab tests, imaging vary)."""
    patient_fee: bool = False
    """Whether the 1 EUR flat fee is taken off the reimbursement of adults."""


ACTS = (
    Act(1111, 1, 1, 2500, 70, 0.05, patient_fee=True, weight=40),
    Act(1112, 3, 1, 4700, 70, 0.35, patient_fee=True, weight=3, min_age=30),
    Act(1112, 5, 1, 3000, 70, 0.45, patient_fee=True, weight=3),
    Act(1112, 7, 7, 3000, 70, 0.45, patient_fee=True, weight=5, sex=FEMALE, min_age=15),
    Act(1112, 11, 1, 3000, 70, 0.40, patient_fee=True, weight=2),
    Act(1112, 12, 12, 3200, 70, 0.30, patient_fee=True, weight=8, max_age=16),
    Act(1112, 14, 1, 3000, 70, 0.35, patient_fee=True, weight=1.5, min_age=30),
    Act(1112, 15, 15, 3000, 70, 0.50, patient_fee=True, weight=5),
    Act(1112, 33, 33, 4170, 70, 0.40, patient_fee=True, weight=2, min_age=12),
    Act(1211, 1, 1, 3500, 70, 0.0, patient_fee=True, weight=6, min_age=75),
    Act(1313, 19, 19, 2300, 70, 0.20, spread=0.4, weight=6, min_age=3),
    Act(1321, 6, 1, 4500, 70, 0.15, spread=0.5, weight=5),
    Act(3111, 26, 1, 1613, 60, 0.02, weight=8, min_age=5),
    Act(3121, 28, 1, 3000, 60, 0.0, weight=4, min_age=3, max_age=14),
    Act(3312, 24, 1, 880, 60, 0.0, weight=4),
    Act(3312, 24, 1, 880, 60, 0.0, weight=16, min_age=65),
    Act(7101, 38, 1, 2400, 60, 0.0, spread=0.6, weight=10),
)


@dataclass(frozen=True)
class Drug(Eligible):
    atc: str
    cip7: str
    """Synthetic seven-digit product number; the CIP13 is 34009 + these digits + EAN-13 key."""

    @property
    def cip13(self) -> str:
        return ean13(f"34009{self.cip7}")


DRUGS = (
    Drug("N02BE01", "3640311", weight=20),  # paracetamol
    Drug("M01AE01", "3348632", weight=6, min_age=1),  # ibuprofen
    Drug("J01CA04", "3560918", weight=8),  # amoxicillin
    Drug("J01CR02", "3587924", weight=4),  # amoxicillin and clavulanic acid
    Drug("J01DD13", "3495011", weight=2),  # cefpodoxime
    Drug("C10AA05", "3722154", weight=5, min_age=30),  # atorvastatin
    Drug("C10AA07", "3797320", weight=4, min_age=30),  # rosuvastatin
    Drug("A10BA02", "3325207", weight=5, min_age=30),  # metformin
    Drug("A10AE04", "3750183", weight=1.5, min_age=10),  # insulin glargine
    Drug("C09AA05", "3512903", weight=3, min_age=35),  # ramipril
    Drug("C09CA01", "3585314", weight=3, min_age=35),  # losartan
    Drug("C07AB07", "3511274", weight=4, min_age=35),  # bisoprolol
    Drug("C08CA01", "3418823", weight=4, min_age=35),  # amlodipine
    Drug("C03CA01", "3201452", weight=2, min_age=50),  # furosemide
    Drug("B01AC06", "3446795", weight=4, min_age=40),  # acetylsalicylic acid
    Drug("B01AF01", "3710822", weight=2, min_age=40),  # rivaroxaban
    Drug("B01AF02", "3749412", weight=2, min_age=40),  # apixaban
    Drug("A02BC01", "3519016", weight=5, min_age=18),  # omeprazole
    Drug("A02BC05", "3572338", weight=4, min_age=18),  # esomeprazole
    Drug("H03AA01", "3563817", weight=4, min_age=10),  # levothyroxine
    Drug("N06AB06", "3366612", weight=2, min_age=15),  # sertraline
    Drug("N06AB10", "3640542", weight=3, min_age=15),  # escitalopram
    Drug("N05BA12", "3321893", weight=3, min_age=18),  # alprazolam
    Drug("N05CF01", "3319214", weight=2, min_age=18),  # zopiclone
    Drug("R03AC02", "3009314", weight=4),  # salbutamol
    Drug("R06AE07", "3565218", weight=3, min_age=2),  # cetirizine
    Drug("G03AA07", "3336218", weight=4, sex=FEMALE, min_age=15, max_age=49),  # levonorgestrel/EE
    Drug("G04CA02", "3593427", weight=2, sex=MALE, min_age=50),  # tamsulosin
    Drug("N02AX02", "3549717", weight=2, min_age=15),  # tramadol
    Drug("M04AA01", "3291418", weight=1.5, min_age=40),  # allopurinol
    Drug("A11CC05", "3004257", weight=5),  # colecalciferol
    Drug("D07AC01", "3223619", weight=2),  # betamethasone
    Drug("S01XA20", "3462850", weight=1),  # artificial tears
)


@dataclass(frozen=True)
class Diagnosis(Eligible):
    """A main diagnosis of a hospital stay (ICD-10 without the dot) and the GHM it groups to."""

    code: str
    ghm_root: str
    """The five GHM characters before the severity level."""
    stay_days: float
    """Mean length of stay at severity level 2."""
    lettered: bool = False
    """Obstetric and neonatal GHMs grade severity A-D instead of 1-4."""


DIAGNOSES = (
    Diagnosis("A099", "06M02", 2, weight=4),  # infectious gastroenteritis
    Diagnosis("A419", "18M07", 10, weight=2, min_age=18),  # sepsis
    Diagnosis("C509", "09C05", 4, weight=2, sex=FEMALE, min_age=30),  # breast cancer
    Diagnosis("C61", "12C11", 5, weight=1.5, sex=MALE, min_age=50),  # prostate cancer
    Diagnosis("C349", "04M09", 8, weight=1.5, min_age=40),  # lung cancer
    Diagnosis("C189", "06C04", 10, weight=1.5, min_age=40),  # colon cancer
    Diagnosis("D649", "16M11", 3, weight=1),  # anaemia
    Diagnosis("E119", "10M02", 5, weight=1.5, min_age=36),  # type 2 diabetes
    Diagnosis("E86", "10M12", 4, weight=1),  # dehydration
    Diagnosis("F329", "19M06", 15, weight=2, min_age=15),  # depressive episode
    Diagnosis("G409", "01M15", 3, weight=1),  # epilepsy
    Diagnosis("G459", "01M31", 3, weight=1.5, min_age=40),  # transient ischaemic attack
    Diagnosis("I639", "01M30", 10, weight=2.5, min_age=40),  # cerebral infarction
    Diagnosis("H251", "02C05", 0, weight=4, min_age=50),  # senile cataract
    Diagnosis("I210", "05M04", 6, weight=1.5, min_age=35),  # anterior STEMI
    Diagnosis("I214", "05M04", 5, weight=1.5, min_age=35),  # NSTEMI
    Diagnosis("I509", "05M09", 8, weight=3, min_age=50),  # heart failure
    Diagnosis("I480", "05M12", 4, weight=2, min_age=40),  # paroxysmal atrial fibrillation
    Diagnosis("I269", "04M10", 7, weight=1, min_age=18),  # pulmonary embolism
    Diagnosis("R074", "05M13", 1, weight=2, min_age=18),  # chest pain
    Diagnosis("R55", "05M06", 2, weight=1.5),  # syncope
    Diagnosis("J189", "04M05", 7, weight=3),  # pneumonia
    Diagnosis("J441", "04M20", 8, weight=2, min_age=40),  # COPD exacerbation
    Diagnosis("J459", "04M15", 3, weight=1),  # asthma
    Diagnosis("J219", "04M18", 3, weight=6, max_age=1),  # bronchiolitis
    Diagnosis("J960", "04M22", 8, weight=1, min_age=40),  # acute respiratory failure
    Diagnosis("K358", "06C09", 3, weight=2, min_age=5, max_age=60),  # appendicitis
    Diagnosis("K802", "07C14", 2, weight=2.5, min_age=20),  # gallstones
    Diagnosis("K409", "06C12", 1, weight=2),  # inguinal hernia
    Diagnosis("K922", "06M04", 5, weight=1, min_age=40),  # gastrointestinal haemorrhage
    Diagnosis("K566", "06M06", 6, weight=1, min_age=20),  # intestinal obstruction
    Diagnosis("L031", "09M05", 6, weight=1),  # cellulitis
    Diagnosis("M179", "08C24", 5, weight=2, min_age=50),  # knee osteoarthritis
    Diagnosis("M169", "08C48", 5, weight=2, min_age=50),  # hip osteoarthritis
    Diagnosis("M545", "08M27", 3, weight=1, min_age=18),  # low back pain
    Diagnosis("S720", "08C47", 10, weight=2, min_age=60),  # femoral neck fracture
    Diagnosis("S525", "08C40", 1, weight=1),  # wrist fracture
    Diagnosis("S060", "01M21", 1, weight=1.5),  # concussion
    Diagnosis("N390", "11M04", 5, weight=2),  # urinary tract infection
    Diagnosis("N200", "11M08", 2, weight=1, min_age=18),  # kidney stone
    Diagnosis("O800", "14Z14", 4, lettered=True, weight=15, sex=FEMALE, min_age=16, max_age=45),  # delivery
    Diagnosis("O820", "14C08", 5, lettered=True, weight=4, sex=FEMALE, min_age=16, max_age=45),  # caesarean
    Diagnosis("Z380", "15M05", 3, lettered=True, weight=30, max_age=0),  # newborn, born in hospital
    Diagnosis("P599", "15M06", 4, lettered=True, weight=3, max_age=0),  # neonatal jaundice
    Diagnosis("T424", "21M06", 1, weight=1, min_age=12),  # benzodiazepine poisoning
    Diagnosis("R104", "06M12", 1, weight=2),  # abdominal pain
)


@dataclass(frozen=True)
class Comorbidity(Eligible):
    """An associated diagnosis (DGN_ASS) coded alongside a stay's main diagnosis."""

    code: str


COMORBIDITIES = (
    Comorbidity("I10", weight=8, min_age=30),  # hypertension
    Comorbidity("E119", weight=5, min_age=30),  # type 2 diabetes
    Comorbidity("E780", weight=4, min_age=30),  # hypercholesterolaemia
    Comorbidity("E669", weight=3, min_age=10),  # obesity
    Comorbidity("F172", weight=3, min_age=15),  # tobacco dependence
    Comorbidity("J449", weight=2, min_age=40),  # COPD
    Comorbidity("N189", weight=2, min_age=40),  # chronic kidney disease
    Comorbidity("I489", weight=2, min_age=40),  # atrial fibrillation
    Comorbidity("I509", weight=2, min_age=50),  # heart failure
    Comorbidity("F329", weight=2, min_age=15),  # depressive episode
    Comorbidity("F102", weight=1.5, min_age=18),  # alcohol dependence
    Comorbidity("E039", weight=1.5, min_age=18),  # hypothyroidism
    Comorbidity("G309", weight=1.5, min_age=65),  # Alzheimer's disease
    Comorbidity("Z921", weight=1.5, min_age=40),  # long-term anticoagulants
    Comorbidity("E46", weight=1, min_age=65),  # malnutrition
    Comorbidity("N179", weight=1, min_age=40),  # acute kidney failure
    Comorbidity("E876", weight=1),  # hypokalaemia
)


@dataclass(frozen=True)
class ConsultationType(Eligible):
    """CNS_TYP: G office visit, GS office visit by a GP specialist, VG home visit, TC teleconsultation."""

    code: str


CONSULTATION_TYPES = (
    ConsultationType("G", weight=80),
    ConsultationType("GS", weight=8),
    ConsultationType("VG", weight=2),
    ConsultationType("VG", weight=25, min_age=80),
    ConsultationType("TC", weight=8),
)
TELECONSULTATION_FROM = date(2020, 3, 15)
"""Teleconsultations were reimbursed widely from the first lockdown; before, a TC becomes a G."""
