{{/* The Trino pod of a role ("coordinator" or "worker"): (list . role). The files come from
     the generated ConfigMaps; the installation's addresses and secrets from the environment. */}}
{{- define "santelake.trinoPod" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $c := (include "santelake.contract" $root | fromJson).trino -}}
{{- $env := $c.env -}}
{{- $audit := (include "santelake.contract" $root | fromJson).audit -}}
{{- $catalog := include "santelake.database" (list $root "catalog") | fromJson -}}
{{- $values := index $root.Values.trino $role -}}
metadata:
  labels:
    {{- include "santelake.labels" (list $root (printf "trino-%s" $role)) | nindent 4 }}
  annotations:
    checksum/config: {{ include "santelake.generatedData" (list $root (printf "trino/%s" $role)) | sha256sum }}
spec:
  {{- include "santelake.podCommon" $root | nindent 2 }}
  securityContext:
    {{- include "santelake.podSecurityContext" (list $root 1000) | nindent 4 }}
  initContainers:
    - name: tls
      image: {{ include "santelake.image" (list $root "trino") }}
      imagePullPolicy: {{ $root.Values.imagePullPolicy }}
      command: [/bin/sh, /var/run/santelake/scripts/trino-tls.sh]
      securityContext:
        {{- include "santelake.containerSecurityContext" $root | nindent 8 }}
      resources:
        {{- toYaml $root.Values.smallResources | nindent 8 }}
      volumeMounts:
        - {name: scripts, mountPath: /var/run/santelake/scripts, readOnly: true}
        - {name: server-tls, mountPath: /var/run/santelake/server, readOnly: true}
        - {name: trust, mountPath: /var/run/santelake/trust, readOnly: true}
        - {name: tls, mountPath: {{ $c.tlsDir }}}
        - {name: tmp, mountPath: /tmp}
  containers:
    - name: trino
      image: {{ include "santelake.image" (list $root "trino") }}
      imagePullPolicy: {{ $root.Values.imagePullPolicy }}
      command: [/usr/lib/trino/bin/launcher, run, --etc-dir={{ $c.etcDir }}, --data-dir={{ $c.dataDir }}]
      env:
        - name: {{ $env.podIp }}
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: {{ $env.nodeId }}
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: {{ $env.discoveryUri }}
          value: {{ printf "http://%s:%v" (include "santelake.trinoInternalHost" $root) $c.httpPort | quote }}
        {{- if eq $role "coordinator" }}
        - name: {{ $env.issuer }}
          value: {{ printf "%s/realms/%s" (include "santelake.keycloakUrl" $root) (include "santelake.contract" $root | fromJson).keycloak.realm | quote }}
        - name: {{ $env.oauth2ClientSecret }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.trinoOAuth2Secret" $root }}, key: client-secret}}
        - name: {{ $env.oauth2TokenKey }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.trinoOAuth2Secret" $root }}, key: token-key}}
        # Every query's events go to the audit receiver, with its token.
        - name: {{ $env.auditUri }}
          value: {{ printf "%s%s" (include "santelake.auditUrl" $root) $audit.trinoPath | quote }}
        - name: {{ $env.auditToken }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.auditSecret" $root }}, key: {{ $audit.secretKeys.token }}}}
        {{- end }}
        # The trail's catalog (compliance officers' `audit`), read as audit_reader by the nodes that scan it.
        - name: {{ $env.auditJdbcUrl }}
          value: {{ printf "jdbc:postgresql://%s:%s/%s?sslmode=verify-full&sslrootcert=%s" (include "santelake.postgresqlHost" $root) (include "santelake.postgresqlPort" $root) $audit.database $c.platformCaFile | quote }}
        - name: {{ $env.auditReaderPassword }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.auditSecret" $root }}, key: {{ index $audit.secretKeys $audit.reader }}}}
        - name: {{ $env.catalogJdbcUrl }}
          value: {{ printf "jdbc:postgresql://%s:%s/%s?sslmode=verify-full&sslrootcert=%s" (include "santelake.postgresqlHost" $root) (include "santelake.postgresqlPort" $root) $catalog.database $c.platformCaFile | quote }}
        - name: {{ $env.catalogUser }}
          value: {{ $catalog.user | quote }}
        - name: {{ $env.warehouse }}
          value: {{ printf "s3://%s/" $root.Values.objectStorage.buckets.warehouse | quote }}
        - name: {{ $env.s3Endpoint }}
          value: {{ include "santelake.s3Endpoint" $root | quote }}
        - name: {{ $env.queryMaxMemory }}
          value: {{ $root.Values.trino.query.maxMemory | quote }}
        - name: {{ $env.queryMaxMemoryPerNode }}
          value: {{ $root.Values.trino.query.maxMemoryPerNode | quote }}
        - name: {{ $env.sharedSecret }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $root "secrets.trinoSharedSecret" "key shared-secret") }}, key: shared-secret}}
        - name: {{ $env.catalogPassword }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $root "secrets.catalogDatabase" "key password") }}, key: password}}
        - name: {{ $env.s3AccessKey }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $root "secrets.trinoStorage" "keys access-key and secret-key") }}, key: access-key}}
        - name: {{ $env.s3SecretKey }}
          valueFrom: {secretKeyRef: {name: {{ include "santelake.requiredSecret" (list $root "secrets.trinoStorage" "keys access-key and secret-key") }}, key: secret-key}}
      ports:
        - {name: http, containerPort: {{ $c.httpPort }}}
        {{- if eq $role "coordinator" }}
        - {name: https, containerPort: {{ $c.httpsPort }}}
        {{- end }}
      # Ready once started, not once listening: /v1/info answers 200 while "starting" is true, and the
      # OAuth 2.0 login is set up last, so a query sent earlier fails ("OAuth2 client not initialized").
      # The image has bash and grep, not curl.
      readinessProbe:
        exec:
          command: [bash, -c, {{ printf `exec 3<>/dev/tcp/127.0.0.1/%v && printf 'GET /v1/info HTTP/1.0\r\n\r\n' >&3 && grep -q '"starting":false' <&3` $c.httpPort | quote }}]
        periodSeconds: 10
        timeoutSeconds: 5
      livenessProbe:
        httpGet: {path: /v1/info, port: http}
        initialDelaySeconds: 60
        periodSeconds: 20
        failureThreshold: 6
      securityContext:
        {{- include "santelake.containerSecurityContext" $root | nindent 8 }}
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      volumeMounts:
        - {name: etc, mountPath: {{ $c.etcDir }}, readOnly: true}
        - {name: tls, mountPath: {{ $c.tlsDir }}, readOnly: true}
        - {name: trust, mountPath: /var/run/santelake/trust, readOnly: true}
        {{- if eq $role "coordinator" }}
        - {name: jwks-ca, mountPath: {{ dir $c.caFile }}, readOnly: true}
        {{- end }}
        - {name: data, mountPath: {{ $c.dataDir }}}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: etc
      projected:
        sources:
          - configMap:
              name: {{ include "santelake.name" (list $root (printf "trino-%s" $role)) }}
              items:
                {{- include "santelake.generatedItems" (list $root (printf "trino/%s" $role)) | indent 16 }}
          {{- if eq $role "coordinator" }}
          - configMap:
              name: {{ include "santelake.name" (list $root "policy") }}
              items:
                {{- include "santelake.generatedItems" (list $root "policy") | indent 16 }}
          {{- end }}
    - name: scripts
      configMap:
        name: {{ include "santelake.name" (list $root "scripts") }}
        items: [{key: trino-tls.sh, path: trino-tls.sh}]
    - name: server-tls
      secret:
        secretName: {{ $root.Values.trino.tls.existingSecret | default (include "santelake.tlsSecret" $root) }}
        defaultMode: 0440
        items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]
    - name: trust
      projected:
        defaultMode: 0444
        sources:
          - secret:
              name: {{ include "santelake.tlsSecret" $root }}
              items: [{key: ca.crt, path: platform-ca.crt}]
          - secret:
              name: {{ include "santelake.s3CaSecret" $root }}
              items: [{key: ca.crt, path: s3-ca.crt}]
    {{- if eq $role "coordinator" }}
    - name: jwks-ca
      secret:
        secretName: {{ $root.Values.keycloak.tls.existingSecret | default (include "santelake.tlsSecret" $root) }}
        defaultMode: 0444
        items: [{key: ca.crt, path: {{ base $c.caFile }}}]
    {{- end }}
    - name: tls
      emptyDir: {medium: Memory, sizeLimit: 1Mi}
    - name: data
      emptyDir: {sizeLimit: 10Gi}
    - name: tmp
      emptyDir: {sizeLimit: 1Gi}
{{- end -}}
