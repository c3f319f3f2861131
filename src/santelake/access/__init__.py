"""How people reach the lake: Keycloak tokens and Trino queries."""
