"""Trino accepts only valid Keycloak tokens meant for it; a granted-nothing user sees nothing."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
import trino.exceptions
from cryptography.hazmat.primitives.asymmetric import rsa

from santelake.access.token import dev_token
from santelake.runtime import devusers
from santelake.runtime.layout import Layout
from santelake.runtime.services.keycloak import Keycloak


def _statement(layout: Layout, token: str | None) -> requests.Response:
    headers = {"X-Trino-User": "alice"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    session = requests.Session()
    session.trust_env = False
    return session.post(f"{layout.url('trino')}/v1/statement", data="SELECT 1", headers=headers,
                        verify=str(layout.tls.ca_cert), timeout=10)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture()
def temporary_client(layout: Layout) -> Iterator[Any]:
    """Make a Keycloak client for one test, removed afterwards."""
    admin = Keycloak(layout).admin()
    made: list[str] = []

    def make(attributes: dict[str, str], audience_mapper: bool) -> str:
        client_id = f"it-{uuid.uuid4().hex[:8]}"
        payload: dict[str, Any] = {
            "clientId": client_id, "publicClient": True, "directAccessGrantsEnabled": True,
            "standardFlowEnabled": False, "attributes": attributes,
        }
        if audience_mapper:
            payload["protocolMappers"] = [{
                "name": "aud", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                "config": {"included.custom.audience": "trino", "access.token.claim": "true"},
            }]
        made.append(admin.create_client(payload))
        return client_id

    yield make
    for internal_id in made:
        admin.delete_client(internal_id)


def _password_token(layout: Layout, client_id: str, user: str = "alice") -> str:
    response = requests.post(
        f"{layout.keycloak_issuer}/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": client_id, "username": user,
              "password": devusers.passwords(layout)[user]},
        verify=str(layout.tls.ca_cert), timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_a_valid_token_is_accepted(layout: Layout) -> None:
    assert _statement(layout, dev_token(layout, "alice")).status_code == 200


def test_no_token_is_refused(layout: Layout) -> None:
    assert _statement(layout, None).status_code == 401


def test_an_expired_token_is_refused(layout: Layout, temporary_client: Any) -> None:
    client_id = temporary_client({"access.token.lifespan": "2"}, audience_mapper=True)
    token = _password_token(layout, client_id)
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] <= 2
    time.sleep(claims["exp"] - time.time() + 2)
    assert _statement(layout, token).status_code == 401


def test_a_token_for_another_audience_is_refused(layout: Layout, temporary_client: Any) -> None:
    token = _password_token(layout, temporary_client({}, audience_mapper=False))
    audience = _claims(token).get("aud")
    assert audience is None or "trino" not in (audience if isinstance(audience, list) else [audience])
    assert _statement(layout, token).status_code == 401


def test_a_token_signed_by_another_key_is_refused(layout: Layout) -> None:
    genuine = dev_token(layout, "alice")
    header = jwt.get_unverified_header(genuine)
    forged = jwt.encode(_claims(genuine), rsa.generate_private_key(public_exponent=65537, key_size=2048),
                        algorithm="RS256", headers={"kid": header["kid"]})
    assert _statement(layout, forged).status_code == 401


def test_a_user_granted_nothing_sees_no_table(sql: Any) -> None:
    assert sql("bob", "SHOW CATALOGS") == []
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        sql("bob", "SELECT count(*) FROM iceberg.snds.hospital_stays")
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        sql("bob", "SHOW TABLES FROM iceberg.snds")


def test_a_researcher_sees_only_what_the_project_grants(sql: Any) -> None:
    assert sql("alice", "SHOW TABLES FROM iceberg.snds") == [("beneficiaries",), ("hospital_stays",)]
    # No column of it is hers: Trino answers as for a relation that does not exist.
    with pytest.raises(trino.exceptions.TrinoUserError, match="Relation not found or not allowed"):
        sql("alice", 'SELECT * FROM iceberg.snds."hospital_stays$files"')
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        sql("alice", "SELECT count(*) FROM iceberg.snds.outpatient_claims")
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        sql("alice", "CREATE TABLE iceberg.snds.copy AS SELECT 1 AS x")
