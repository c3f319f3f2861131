#!/bin/sh
# helm test: sends a query to Trino's HTTPS endpoint, verifying its certificate against the
# platform CA. Without a token Trino must refuse it (401): the endpoint is up, TLS is valid
# and authentication is enforced.
set -eu
server="$SANTELAKE_TRINO_URL"
if out=$(trino --server "$server" --truststore-path /var/run/santelake/ca/ca.crt --execute 'SELECT 1' 2>&1); then
    echo "helm-test: Trino answered a query without authentication: $out" >&2
    exit 1
fi
case "$out" in
    *401*|*"Authentication failed"*|*Unauthorized*) echo "helm-test: Trino is up over TLS and requires a token" ;;
    *) echo "helm-test: Trino did not answer as expected: $out" >&2; exit 1 ;;
esac
