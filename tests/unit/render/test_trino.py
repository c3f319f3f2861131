from santelake.render import trino
from santelake.render.properties import to_properties

PARAMS = trino.TrinoParams(
    etc_dir="/etc/trino", node_id="n1", environment="test", bind_ip="127.0.0.1", internal_address="127.0.0.1",
    http_port=8080, https_port=8443, keystore_path="/tls/bundle.pem", truststore_path="/tls/trust.p12",
    jwks_ca_path="/tls/ca.pem", issuer="https://kc:8443/realms/santelake", audience="trino",
    catalog_name="santelake", catalog_jdbc_url="jdbc:postgresql://db/cat?sslmode=verify-full", catalog_user="cat",
    warehouse="s3://wh/", s3_endpoint="https://s3:9000",
)


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_coordinator_requires_jwt_over_https_from_keycloak() -> None:
    config = _props(trino.config_properties(PARAMS))
    assert config["http-server.https.enabled"] == "true"
    # A browser login (OAuth 2.0) first, then a token the client holds (JWT): both from the realm.
    assert config["http-server.authentication.type"] == "oauth2,jwt"
    assert config["http-server.authentication.jwt.key-file"] == (
        "https://kc:8443/realms/santelake/protocol/openid-connect/certs")
    assert config["http-server.authentication.jwt.required-audience"] == "trino"
    assert config["http-server.authentication.jwt.required-issuer"] == PARAMS.issuer
    assert config["http-server.authentication.jwt.principal-field"] == "preferred_username"
    assert config["internal-communication.shared-secret"] == "${ENV:SANTELAKE_TRINO_SHARED_SECRET}"


def test_browser_login_uses_keycloak_without_discovery_and_the_username_as_principal() -> None:
    config = _props(trino.config_properties(PARAMS))
    oauth2 = {k.removeprefix("http-server.authentication.oauth2."): v for k, v in config.items()
              if k.startswith("http-server.authentication.oauth2.")}
    assert oauth2["issuer"] == PARAMS.issuer and oauth2["client-id"] == "trino"
    # Written out, not discovered at start: the coordinator starts whether Keycloak is up or not.
    assert oauth2["oidc.discovery"] == "false"
    assert oauth2["auth-url"] == "https://kc:8443/realms/santelake/protocol/openid-connect/auth"
    assert oauth2["token-url"] == "https://kc:8443/realms/santelake/protocol/openid-connect/token"
    assert oauth2["principal-field"] == "preferred_username"
    assert oauth2["max-clock-skew"] == "0s"  # an expired token is refused at once, as by the JWT path
    assert oauth2["client-secret"] == "${ENV:SANTELAKE_TRINO_OAUTH2_CLIENT_SECRET}"
    assert oauth2["refresh-tokens"] == "true"
    assert oauth2["refresh-tokens.secret-key"] == "${ENV:SANTELAKE_TRINO_OAUTH2_TOKEN_KEY}"
    assert oauth2["refresh-tokens.issued-token.timeout"] == "1800s"
    assert config["oauth2-jwk.http-client.trust-store-path"] == PARAMS.jwks_ca_path
    assert "oauth2.client-secret" not in trino.config_properties(trino.TrinoParams(**{
        **PARAMS.__dict__, "coordinator": False}))


def test_a_token_key_is_256_random_bits() -> None:
    import base64

    keys = {trino.new_token_key() for _ in range(3)}
    assert len(keys) == 3 and all(len(base64.b64decode(key)) == 32 for key in keys)


def test_no_secret_value_is_written_only_references() -> None:
    catalog = _props(trino.iceberg_catalog(PARAMS))
    for key in ("iceberg.jdbc-catalog.connection-password", "s3.aws-access-key", "s3.aws-secret-key"):
        assert catalog[key].startswith("${ENV:")
    assert catalog["iceberg.jdbc-catalog.catalog-name"] == "santelake"
    assert catalog["iceberg.catalog.type"] == "jdbc"


def test_node_binds_loopback_and_worker_has_no_security_files() -> None:
    node = _props(trino.node_properties(PARAMS, "/data"))
    assert node["node.bind-ip"] == "127.0.0.1"
    files = trino.etc_files(PARAMS, "/data", "{}", "")
    assert {"access-control.properties", "rules.json", "groups.txt"} <= set(files)
    from dataclasses import replace

    worker = trino.etc_files(replace(PARAMS, coordinator=False), "/data", "{}", "")
    assert "rules.json" not in worker
    assert "http-server.authentication.type" not in worker["config.properties"]


def test_properties_are_sorted_and_reject_newlines() -> None:
    assert to_properties({"b": 1, "a": True}) == "a=true\nb=1\n"
    try:
        to_properties({"a": "x\ny"})
    except ValueError as exc:
        assert "'a'" in str(exc)
    else:
        raise AssertionError("a newline in a value must be refused")


def test_the_audit_listener_sends_created_and_completed_events_with_a_token_reference() -> None:
    from dataclasses import replace

    audited = replace(PARAMS, audit_uri="https://audit:18445/v1/events/trino",
                      audit_jdbc_url="jdbc:postgresql://db/santelake_audit?sslmode=verify-full")
    files = trino.etc_files(audited, "/data", "{}", "")
    config = _props(files["config.properties"])
    assert config["event-listener.config-files"] == f"/etc/trino/{trino.AUDIT_LISTENER_FILE}"
    listener = _props(files[trino.AUDIT_LISTENER_FILE])
    assert listener["event-listener.name"] == "http"
    assert (listener["http-event-listener.log-created"], listener["http-event-listener.log-completed"]) == (
        "true", "true")
    assert listener["http-event-listener.connect-ingest-uri"] == audited.audit_uri
    assert listener["http-event-listener.connect-http-headers"] == (
        "Authorization: Bearer ${ENV:SANTELAKE_TRINO_AUDIT_TOKEN}")
    assert int(listener["http-event-listener.connect-retry-count"]) > 0
    catalog = _props(files[trino.AUDIT_CATALOG_FILE])
    assert (catalog["connector.name"], catalog["connection-user"]) == ("postgresql", "audit_reader")
    assert catalog["connection-password"].startswith("${ENV:")
    # A worker runs the trail catalog's scans but sends no event: the catalog, not the listener.
    worker = trino.etc_files(replace(audited, coordinator=False), "/data", "{}", "")
    assert trino.AUDIT_CATALOG_FILE in worker
    assert trino.AUDIT_LISTENER_FILE not in worker
    assert "event-listener.config-files" not in _props(worker["config.properties"])
    # Without a receiver there is neither listener nor catalog.
    plain = trino.etc_files(PARAMS, "/data", "{}", "")
    assert trino.AUDIT_LISTENER_FILE not in plain
    assert trino.AUDIT_CATALOG_FILE not in plain
