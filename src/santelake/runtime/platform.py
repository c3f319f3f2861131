"""The platform settings of the local installation, made from its state folder.

The same model a pod reads from its environment (``santelake.settings``): here every path is
a file of the state folder (generated secrets, the local CA) and every URL a loopback one.
A ``SANTELAKE_<FIELD>`` variable set in the environment overrides its field (precedence:
state folder < environment), as ``SANTELAKE_SCHEMAS_DIR`` or ``SANTELAKE_PSEUDONYM_KEY_FILE``
do. The local Airflow gets the result as environment variables, so its tasks read it as a
pod does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from santelake.errors import ConfigError
from santelake.locations import policies_dir, schemas_dir
from santelake.names import CATALOG_ROLE
from santelake.pseudonymise.key import KEY_ENV, KEY_FILE_ENV
from santelake.runtime.layout import Layout
from santelake.runtime.services.keycloak import ADMIN_USER, Keycloak
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import role_password_key
from santelake.runtime.services.trino import Trino
from santelake.settings import POLICY_TARGET_FILE, PlatformSettings, env_name

PSEUDONYM_KEY_SECRET = "pseudonym-key"


def platform_settings(layout: Layout, env: Mapping[str, str] | None = None) -> PlatformSettings:
    """The local installation's platform settings; generates its secrets on first use, as `up` does."""
    import secrets as random

    env = os.environ if env is None else env
    if KEY_ENV in env:
        raise ConfigError(f"{KEY_ENV} (a key given as a value) is not read: the key chain is a file; put the key "
                          f"in a file and set {KEY_FILE_ENV} to its path")
    store = layout.secrets
    access_key, secret_key = Minio(layout).credential_files("ingest")
    trino = Trino(layout)
    s = layout.settings
    local: dict[str, object] = dict(
        catalog_host=s.hostname,
        catalog_port=s.postgres_port,
        catalog_password_file=store.file(role_password_key(CATALOG_ROLE)),
        s3_endpoint=layout.url("minio"),
        s3_access_key_file=access_key,
        s3_secret_key_file=secret_key,
        ca_file=layout.tls.ca_cert,
        pseudonym_key_file=store.file(PSEUDONYM_KEY_SECRET, generate=lambda: random.token_hex(32)),
        schemas_dir=schemas_dir().resolve(),
        policies_dir=policies_dir().resolve(),
        work_dir=layout.root / "work",
        keycloak_url=Keycloak(layout).url,
        keycloak_admin_user=ADMIN_USER,
        keycloak_admin_password_file=store.file("keycloak-admin-password"),
        trino_url=trino.url,
        policy_target=f"{POLICY_TARGET_FILE}:{trino.etc}",
    )
    overrides = {name: env[env_name(name)] for name in PlatformSettings.model_fields if env_name(name) in env}
    return PlatformSettings.of(**(local | overrides))
