"""De-identification on the way into the lake: keyed pseudonyms and generalised values.

``key`` loads and checks the secret key, ``pseudonym`` makes HMAC pseudonyms, ``parse``
turns raw text into typed values, ``generalise`` coarsens quasi-identifiers, and
``transforms`` applies the steps a table file declares for a column.
"""

from santelake.pseudonymise.errors import InvalidValuesError
from santelake.pseudonymise.generalise import month_start, postcode_to_department, year_start
from santelake.pseudonymise.key import (
    KEY_ENV,
    KEY_FILE_ENV,
    KEY_ID_PROPERTY,
    MIN_KEY_BYTES,
    decode_key,
    key_id_of,
    load_key,
)
from santelake.pseudonymise.parse import (
    normalise_pipe_list,
    parse_date_ddmmyyyy,
    parse_date_iso,
    parse_decimal,
)
from santelake.pseudonymise.pseudonym import Pseudonymiser, normalise_identifier
from santelake.pseudonymise.transforms import apply_transforms

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KEY_ID_PROPERTY",
    "MIN_KEY_BYTES",
    "InvalidValuesError",
    "Pseudonymiser",
    "apply_transforms",
    "decode_key",
    "key_id_of",
    "load_key",
    "month_start",
    "normalise_identifier",
    "normalise_pipe_list",
    "parse_date_ddmmyyyy",
    "parse_date_iso",
    "parse_decimal",
    "postcode_to_department",
    "year_start",
]
