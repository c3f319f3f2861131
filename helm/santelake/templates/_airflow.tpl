{{/* Airflow's environment, shared by every Airflow pod and the migration job. */}}
{{- define "santelake.airflowEnv" -}}
{{- $db := include "santelake.database" (list . "airflow") | fromJson -}}
{{- $apiUrl := printf "https://%s:8080" (include "santelake.name" (list . "airflow-api-server")) -}}
- {name: AIRFLOW_HOME, value: /opt/airflow}
- {name: AIRFLOW__CORE__DAGS_FOLDER, value: {{ .Values.airflow.dagsFolder | quote }}}
- {name: AIRFLOW__CORE__LOAD_EXAMPLES, value: "False"}
- {name: AIRFLOW__CORE__EXECUTOR, value: LocalExecutor}
- {name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL, value: {{ printf "%s/execution/" $apiUrl | quote }}}
- {name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS, value: "admin:admin"}
- {name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE, value: /var/run/santelake/airflow/passwords.json}
- {name: AIRFLOW__API__HOST, value: "0.0.0.0"}
- {name: AIRFLOW__API__PORT, value: "8080"}
- {name: AIRFLOW__API__BASE_URL, value: {{ $apiUrl | quote }}}
- {name: AIRFLOW__API__SSL_CERT, value: /var/run/santelake/tls/tls.crt}
- {name: AIRFLOW__API__SSL_KEY, value: /var/run/santelake/tls/tls.key}
- {name: AIRFLOW__API__SSL_CA_FILE, value: /var/run/santelake/tls/ca.crt}
- {name: AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK, value: "False"}
- {name: AIRFLOW__LOGGING__BASE_LOG_FOLDER, value: /opt/airflow/logs}
- {name: GX_ANALYTICS_ENABLED, value: "false"}
- {name: SSL_CERT_FILE, value: /var/run/santelake/tls/ca.crt}
- name: SANTELAKE_AIRFLOW_DB_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.airflowDatabase" "key password") }}, key: password}}
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  value: {{ printf "postgresql+psycopg://%s:$(SANTELAKE_AIRFLOW_DB_PASSWORD)@%s:%s/%s?sslmode=verify-full&sslrootcert=/var/run/santelake/tls/ca.crt" $db.user (include "santelake.postgresqlHost" .) (include "santelake.postgresqlPort" .) $db.database | quote }}
{{- range $name, $key := dict "AIRFLOW__CORE__FERNET_KEY" "fernet-key" "AIRFLOW__API_AUTH__JWT_SECRET" "jwt-secret" "AIRFLOW__API__SECRET_KEY" "api-secret-key" }}
- name: {{ $name }}
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $ "secrets.airflow" "keys fernet-key, jwt-secret, api-secret-key and passwords.json") }}, key: {{ $key }}}}
{{- end }}
- {name: SANTELAKE_S3_ENDPOINT, value: {{ include "santelake.s3Endpoint" . | quote }}}
- {name: SANTELAKE_WAREHOUSE_BUCKET, value: {{ .Values.objectStorage.buckets.warehouse | quote }}}
- {name: SANTELAKE_LANDING_BUCKET, value: {{ .Values.objectStorage.buckets.landing | quote }}}
- name: SANTELAKE_S3_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.ingestStorage" "keys access-key and secret-key") }}, key: access-key}}
- name: SANTELAKE_S3_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.ingestStorage" "keys access-key and secret-key") }}, key: secret-key}}
- name: SANTELAKE_PSEUDONYMISATION_KEY
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.pseudonymisationKey" "key key") }}, key: key}}
{{- end -}}

{{- define "santelake.airflowMounts" -}}
- {name: home, mountPath: /opt/airflow}
- {name: tmp, mountPath: /tmp}
- {name: tls, mountPath: /var/run/santelake/tls, readOnly: true}
- {name: airflow-passwords, mountPath: /var/run/santelake/airflow, readOnly: true}
{{- end -}}

{{- define "santelake.airflowVolumes" -}}
- {name: home, emptyDir: {sizeLimit: 2Gi}}
- {name: tmp, emptyDir: {sizeLimit: 2Gi}}
- name: tls
  secret:
    secretName: {{ include "santelake.tlsSecret" . }}
    defaultMode: 0440
- name: airflow-passwords
  secret:
    secretName: {{ include "santelake.requiredSecret" (list . "secrets.airflow" "keys fernet-key, jwt-secret, api-secret-key and passwords.json") }}
    defaultMode: 0440
    items: [{key: passwords.json, path: passwords.json}]
{{- end -}}
