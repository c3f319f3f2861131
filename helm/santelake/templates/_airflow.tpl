{{/* Airflow's environment, shared by every Airflow pod and the migration job: the references
     its generated configuration expands, that configuration (files/generated/airflow/env.json,
     made by santelake.render.airflow as the local runtime's), its secrets, then the platform
     settings the DAGs' tasks read (santelake.settings). */}}
{{- define "santelake.airflowEnv" -}}
{{- $c := include "santelake.contract" . | fromJson -}}
{{- $a := $c.airflow -}}
{{- $p := $c.platform -}}
{{- $db := include "santelake.database" (list . "airflow") | fromJson -}}
{{- $catalog := include "santelake.database" (list . "catalog") | fromJson -}}
- {name: {{ $a.env.apiUrl }}, value: {{ printf "https://%s:%v" (include "santelake.name" (list . "airflow-api-server")) $a.port | quote }}}
- {name: {{ $a.env.dagsFolder }}, value: {{ .Values.airflow.dagsFolder | quote }}}
- {name: {{ $a.env.publicUrl }}, value: {{ include "santelake.airflowUrl" . | quote }}}
- {name: {{ $a.env.keycloakUrl }}, value: {{ include "santelake.keycloakUrl" . | quote }}}
- name: SANTELAKE_AIRFLOW_DB_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.airflowDatabase" "key password") }}, key: password}}
- name: {{ $a.env.databaseUrl }}
  value: {{ printf "postgresql+psycopg://%s:$(SANTELAKE_AIRFLOW_DB_PASSWORD)@%s:%s/%s?sslmode=verify-full&sslrootcert=%s/ca.crt" $db.user (include "santelake.postgresqlHost" .) (include "santelake.postgresqlPort" .) $db.database $a.tlsDir | quote }}
{{- range $name, $value := .Files.Get "files/generated/airflow/env.json" | fromJson }}
- {name: {{ $name }}, value: {{ $value | quote }}}
{{- end }}
{{- range $name, $key := $a.secrets }}
- name: {{ $name }}
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $ "secrets.airflow" "keys fernet-key, jwt-secret and api-secret-key") }}, key: {{ $key }}}}
{{- end }}
- {name: SSL_CERT_FILE, value: {{ $p.caFile | quote }}}
- {name: {{ $p.env.catalog_host }}, value: {{ include "santelake.postgresqlHost" . | quote }}}
- {name: {{ $p.env.catalog_port }}, value: {{ include "santelake.postgresqlPort" . | quote }}}
- {name: {{ $p.env.catalog_database }}, value: {{ $catalog.database | quote }}}
- {name: {{ $p.env.catalog_user }}, value: {{ $catalog.user | quote }}}
- {name: {{ $p.env.s3_endpoint }}, value: {{ include "santelake.s3Endpoint" . | quote }}}
- {name: {{ $p.env.ca_file }}, value: {{ $p.caFile | quote }}}
- {name: {{ $p.env.warehouse_bucket }}, value: {{ .Values.objectStorage.buckets.warehouse | quote }}}
- {name: {{ $p.env.landing_bucket }}, value: {{ .Values.objectStorage.buckets.landing | quote }}}
- {name: {{ $p.env.landing_keep_loaded_days }}, value: {{ .Values.ingestion.keepLoadedDays | quote }}}
- {name: {{ $p.env.landing_keep_rejected_days }}, value: {{ .Values.ingestion.keepRejectedDays | quote }}}
- {name: {{ $p.env.schemas_dir }}, value: {{ $p.schemasDir | quote }}}
- {name: {{ $p.env.policies_dir }}, value: {{ $p.policiesDir | quote }}}
- {name: {{ $p.env.work_dir }}, value: {{ $p.workDir | quote }}}
- {name: {{ $p.env.key_cache_bytes }}, value: {{ .Values.ingestion.keyCacheBytes | int64 | quote }}}
- {name: {{ $p.env.keycloak_url }}, value: {{ printf "https://%s:8443" (include "santelake.keycloakHost" .) | quote }}}
- name: {{ $p.env.keycloak_admin_user }}
  valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list . "secrets.keycloakAdmin" "keys username and password") }}, key: username}}
- {name: {{ $p.env.trino_url }}, value: {{ printf "https://%s:8443" (include "santelake.trinoHost" .) | quote }}}
- {name: {{ $p.env.policy_target }}, value: {{ printf "configmap:%s/%s" .Release.Namespace (include "santelake.name" (list . "policy")) | quote }}}
- {name: {{ $p.env.catalogue_target }}, value: {{ printf "configmap:%s/%s" .Release.Namespace (include "santelake.name" (list . "catalogue-site")) | quote }}}
{{- range $p.secrets }}
- {name: {{ .env }}, value: {{ .file | quote }}}
{{- end }}
# Loads and policy applies are recorded in the audit trail (santelake.audit.client).
- {name: {{ $c.audit.clientEnv.url }}, value: {{ include "santelake.auditUrl" . | quote }}}
- {name: {{ $c.audit.clientEnv.tokenFile }}, value: {{ $c.audit.airflowTokenFile | quote }}}
{{- end -}}

{{- define "santelake.airflowMounts" -}}
{{- $c := include "santelake.contract" . | fromJson -}}
- {name: home, mountPath: {{ $c.airflow.home }}}
- {name: work, mountPath: {{ $c.platform.workDir }}}
- {name: tmp, mountPath: /tmp}
- {name: tls, mountPath: {{ $c.airflow.tlsDir }}, readOnly: true}
- {name: keycloak-ca, mountPath: {{ dir $c.airflow.keycloakCaFile }}, readOnly: true}
- {name: platform-secrets, mountPath: {{ $c.platform.secretsDir }}, readOnly: true}
- {name: audit-token, mountPath: {{ dir $c.audit.airflowTokenFile }}, readOnly: true}
{{- end -}}

{{- define "santelake.airflowVolumes" -}}
{{- $c := include "santelake.contract" . | fromJson -}}
- {name: home, emptyDir: {sizeLimit: 2Gi}}
- {name: work, emptyDir: {sizeLimit: {{ .Values.ingestion.workDirSize }}}}
- {name: tmp, emptyDir: {sizeLimit: 2Gi}}
- name: tls
  secret:
    secretName: {{ include "santelake.tlsSecret" . }}
    defaultMode: 0440
- name: keycloak-ca
  secret:
    secretName: {{ .Values.keycloak.tls.existingSecret | default (include "santelake.tlsSecret" .) }}
    defaultMode: 0444
    items: [{key: ca.crt, path: {{ base $c.airflow.keycloakCaFile }}}]
- name: platform-secrets
  projected:
    defaultMode: 0440
    sources:
      {{- range $c.platform.secrets }}
      - secret:
          name: {{ include "santelake.requiredSecret" (list $ .values (printf "key %s" .key)) }}
          items: [{key: {{ .key }}, path: {{ base .file }}}]
      {{- end }}
- name: audit-token
  secret:
    secretName: {{ include "santelake.auditSecret" . }}
    defaultMode: 0440
    items: [{key: {{ $c.audit.secretKeys.token }}, path: {{ base $c.audit.airflowTokenFile }}}]
{{- end -}}
