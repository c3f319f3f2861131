"""The platform settings model: read from the environment, every fault named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.errors import ConfigError
from santelake.settings import PlatformSettings, env_name, variables


def _environment(tmp_path: Path) -> dict[str, str]:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "policies").mkdir()
    return {
        "SANTELAKE_CATALOG_HOST": "pg.example", "SANTELAKE_CATALOG_PORT": "5432",
        "SANTELAKE_CATALOG_PASSWORD_FILE": str(secret), "SANTELAKE_S3_ENDPOINT": "https://s3.example:9000",
        "SANTELAKE_S3_ACCESS_KEY_FILE": str(secret), "SANTELAKE_S3_SECRET_KEY_FILE": str(secret),
        "SANTELAKE_CA_FILE": str(secret), "SANTELAKE_PSEUDONYM_KEY_FILE": str(secret),
        "SANTELAKE_SCHEMAS_DIR": str(tmp_path / "schemas"), "SANTELAKE_POLICIES_DIR": str(tmp_path / "policies"),
        "SANTELAKE_WORK_DIR": str(tmp_path / "work"), "SANTELAKE_KEYCLOAK_URL": "https://keycloak.example:8443/",
        "SANTELAKE_KEYCLOAK_ADMIN_USER": "admin", "SANTELAKE_KEYCLOAK_ADMIN_PASSWORD_FILE": str(secret),
        "SANTELAKE_TRINO_URL": "https://trino.example:8443", "SANTELAKE_POLICY_TARGET": "configmap:lake/policy",
        "SANTELAKE_CATALOGUE_TARGET": "configmap:lake/catalogue-site",
    }


def test_a_complete_environment_gives_the_model_back_through_its_own_variables(tmp_path: Path) -> None:
    settings = PlatformSettings.from_environment(_environment(tmp_path))
    assert settings.catalog_port == 5432 and settings.catalog_database == "santelake_catalog"
    assert settings.keycloak_issuer == "https://keycloak.example:8443/realms/santelake"
    assert settings.s3_host == "s3.example:9000"
    assert settings.secret("catalog_password_file") == "s3cr3t"
    assert PlatformSettings.from_environment(settings.as_environment()) == settings
    assert set(settings.as_environment()) == set(variables())
    # The catalogue's target is optional: the local stack has none.
    local = settings.as_environment()
    del local["SANTELAKE_CATALOGUE_TARGET"]
    assert PlatformSettings.from_environment(local).catalogue_target is None


def test_every_missing_variable_is_named_with_what_it_expects(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    del env["SANTELAKE_CATALOG_HOST"], env["SANTELAKE_TRINO_URL"]
    with pytest.raises(ConfigError) as caught:
        PlatformSettings.from_environment(env)
    message = str(caught.value)
    assert "SANTELAKE_CATALOG_HOST: not set; expected host name of the PostgreSQL server" in message
    assert "SANTELAKE_TRINO_URL: not set; expected Trino's URL" in message


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("SANTELAKE_S3_ENDPOINT", "http://s3.example:9000", "an https:// URL"),
    ("SANTELAKE_CATALOG_PORT", "70000", "less than or equal to 65535"),
    ("SANTELAKE_CA_FILE", "/nowhere/ca.pem", "the path of an existing file"),
    ("SANTELAKE_SCHEMAS_DIR", "relative/schemas", "an absolute path"),
    ("SANTELAKE_POLICY_TARGET", "configmap:policy", "file:/<absolute folder> or configmap:<namespace>/<name>"),
    ("SANTELAKE_LANDING_KEEP_REJECTED_DAYS", "-1", "greater than or equal to 0"),
])
def test_a_malformed_variable_is_named_with_its_value(tmp_path: Path, variable: str, value: str,
                                                       expected: str) -> None:
    env = _environment(tmp_path) | {variable: value}
    with pytest.raises(ConfigError, match=f"{variable}={value}: expected .*{expected}"):
        PlatformSettings.from_environment(env)


def test_an_empty_secret_file_is_refused_with_its_variable(tmp_path: Path) -> None:
    settings = PlatformSettings.from_environment(_environment(tmp_path))
    (tmp_path / "secret").write_text("\n")
    with pytest.raises(ConfigError, match=r"SANTELAKE_S3_SECRET_KEY_FILE=.*the file is empty"):
        settings.secret("s3_secret_key_file")


def test_every_secret_is_a_file_never_a_value() -> None:
    words = ("password", "secret", "_key")
    secret_fields = [name for name in PlatformSettings.model_fields if any(word in name for word in words)]
    assert secret_fields and all(name.endswith("_file") for name in secret_fields), secret_fields
    assert env_name("ca_file") == "SANTELAKE_CA_FILE"
