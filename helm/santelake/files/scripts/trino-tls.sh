#!/bin/sh
# Trino's TLS files, built from mounted Secrets at pod start: a PEM keystore (key, then
# certificate chain) and a PKCS12 truststore holding every CA Trino verifies (the S3
# endpoint, PostgreSQL). The truststore replaces the JVM's default trust, holds only public
# certificates and no MAC, so its password protects nothing and is not a secret.
set -eu
server=/var/run/santelake/server
trust=/var/run/santelake/trust
out=/var/run/santelake/tls

umask 077
cat "$server/tls.key" "$server/tls.crt" > "$out/bundle.pem"
rm -f "$out/truststore.p12"
for ca in "$trust"/*.crt; do
    keytool -J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE -J-Dkeystore.pkcs12.macAlgorithm=NONE \
        -importcert -noprompt -alias "$(basename "$ca" .crt)" -file "$ca" \
        -keystore "$out/truststore.p12" -storetype PKCS12 -storepass santelake-public-certificates
done
echo "trino-tls: keystore and truststore ($(ls "$trust" | wc -l) CA files) written to $out"
