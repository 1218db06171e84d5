{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "prefonline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped full name; objects append a component suffix, so keep room for it. */}}
{{- define "prefonline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "prefonline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "prefonline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prefonline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "prefonline.labels" -}}
helm.sh/chart: {{ include "prefonline.chart" . }}
{{ include "prefonline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: prefonline
{{- end }}

{{- define "prefonline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prefonline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest is set (the exact image, whatever happens to the tag), else repository:tag. */}}
{{- define "prefonline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Secret holding the policy port's bearer token. */}}
{{- define "prefonline.policyTokenSecret" -}}
{{- .Values.policyServer.auth.existingSecret | default (printf "%s-policy-token" (include "prefonline.fullname" .)) }}
{{- end }}

{{/* The URL generators fetch policies from: the learner's policy Service (one replica, stable name). */}}
{{- define "prefonline.policyBaseUrl" -}}
{{- printf "http://%s-policy.%s.svc:%v" (include "prefonline.fullname" .) .Release.Namespace .Values.policyServer.port }}
{{- end }}

{{/* Cross-field rules the JSON schema cannot express, failing with the value to change. */}}
{{- define "prefonline.validate" -}}
{{- if and .Values.kafka.bootstrapServers (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SASL_PLAINTEXT")) (not .Values.kafka.allowPlaintext) }}
{{- fail (printf "kafka.securityProtocol %s sends every record (and with SASL PLAIN the password) unencrypted, and whoever can write the policy topic picks the model every generator serves: use SASL_SSL, or set kafka.allowPlaintext=true for a test bed (docs/OPERATIONS.md, \"Security\")" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if eq (int .Values.policyServer.port) (int .Values.metrics.port) }}
{{- fail "policyServer.port must differ from metrics.port: the weights and the metrics are separate surfaces" }}
{{- end }}
{{- if and .Values.generator.mountCheckpoints (not .Values.learner.persistence.existingClaim) }}
{{- fail "generator.mountCheckpoints needs learner.persistence.existingClaim (a ReadWriteMany or ReadOnlyMany claim the generators can mount)" }}
{{- end }}
{{- if and .Values.generator.mountCheckpoints (not .Values.learner.persistence.enabled) }}
{{- fail "generator.mountCheckpoints needs learner.persistence.enabled=true" }}
{{- end }}
{{- if and .Values.kafka.ssl.certificateKey (not .Values.kafka.ssl.keyKey) }}
{{- fail "kafka.ssl.certificateKey needs kafka.ssl.keyKey (mutual TLS takes a certificate and its key)" }}
{{- end }}
{{- if and (or .Values.kafka.ssl.certificateKey (ne .Values.kafka.ssl.caKey "ca.crt")) (not .Values.kafka.ssl.existingSecret) }}
{{- fail "kafka.ssl keys are set but kafka.ssl.existingSecret is empty" }}
{{- end }}
{{- end }}

{{/*
The PrefOnline container, shared by the learner and the generators.
Call with (dict "root" $ "role" "learner|generator|all" "component" "learner|generator" "mountCheckpoints" bool).
Configuration reaches the worker as the mounted config/appsettings.json (/etc/prefonline/config) plus PREFONLINE__Section__Key
environment variables (they win over the file).
*/}}
{{- define "prefonline.container" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: prefonline
  image: {{ include "prefonline.image" $root }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - run
    - --config
    - /etc/prefonline/config/appsettings.json
    - --role
    - {{ .role }}
  ports:
    - name: metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
    {{- if and (eq .component "learner") (not $v.generator.mountCheckpoints) }}
    - name: policy
      containerPort: {{ $v.policyServer.port }}
      protocol: TCP
    {{- end }}
  env:
    - name: PREFONLINE__Observability__Port
      value: {{ $v.metrics.port | quote }}
    - name: PREFONLINE__Observability__BindAddress
      value: "0.0.0.0"
    - name: PREFONLINE__Checkpoints__Directory
      value: /var/lib/prefonline/checkpoints
    # The bearer token of the policy port: the learner requires it, generators send it.
    - name: PREFONLINE__PolicyDistribution__TokenFile
      value: /etc/prefonline/policy-token/{{ $v.policyServer.auth.tokenKey }}
    {{- if eq .component "learner" }}
    # Checkpoint artefacts are staged on the checkpoint volume, not in /tmp (a full copy of the model state).
    - name: PREFONLINE__Worker__StagingDirectory
      value: /var/lib/prefonline/staging
    - name: PREFONLINE__PolicyDistribution__Port
      value: {{ $v.policyServer.port | quote }}
    - name: PREFONLINE__PolicyDistribution__BindAddress
      value: "0.0.0.0"
    - name: PREFONLINE__PolicyDistribution__MaxConnections
      value: {{ $v.policyServer.maxConnections | quote }}
    - name: PREFONLINE__PolicyDistribution__RequestsPerSecond
      value: {{ $v.policyServer.requestsPerSecond | quote }}
    - name: PREFONLINE__PolicyDistribution__RequestBurst
      value: {{ $v.policyServer.requestBurst | quote }}
    {{- range $i, $publisher := $v.serving.publishers }}
    # Serving:Publishers:{{ $i }}: hands each version to the serving stack (docs/OPERATIONS.md, "Hand-off to the serving stack").
    - name: PREFONLINE__Serving__Publishers__{{ $i }}__Type
      value: {{ $publisher.type | quote }}
    - name: PREFONLINE__Serving__Publishers__{{ $i }}__Directory
      value: {{ $publisher.directory | default "/var/lib/prefonline/serving" | quote }}
    {{- range $key, $name := dict "name" "Name" "baseUrl" "BaseUrl" "serverPath" "ServerPath" "adapterName" "AdapterName" "keepVersions" "KeepVersions" "timeout" "Timeout" "loadInplace" "LoadInplace" "abortAllRequests" "AbortAllRequests" }}
    {{- if hasKey $publisher $key }}
    - name: PREFONLINE__Serving__Publishers__{{ $i }}__{{ $name }}
      value: {{ get $publisher $key | toString | quote }}
    {{- end }}
    {{- end }}
    {{- with $publisher.tokenSecret }}
    # The server's API key, from a Secret: never in the ConfigMap or the values.
    - name: PREFONLINE_SERVING_TOKEN_{{ $i }}
      valueFrom:
        secretKeyRef:
          name: {{ .name | quote }}
          key: {{ .key | default "token" | quote }}
    - name: PREFONLINE__Serving__Publishers__{{ $i }}__TokenVariable
      value: PREFONLINE_SERVING_TOKEN_{{ $i }}
    {{- end }}
    {{- end }}
    {{- else }}
    - name: PREFONLINE__PolicyDistribution__DownloadDirectory
      value: /var/cache/prefonline/policies
    - name: PREFONLINE__PolicyDistribution__MaxDownloadBytes
      value: {{ $v.generator.policyDownloads.maxBytes | int64 | quote }}
    {{- end }}
    {{- if not $v.generator.mountCheckpoints }}
    # The learner's ReadWriteOnce volume cannot be shared: policy events name the learner's policy
    # Service, and generators accept only events that point there (and fetch with the token).
    - name: PREFONLINE__Worker__PolicyBaseUrl
      value: {{ include "prefonline.policyBaseUrl" $root | quote }}
    {{- end }}
    - name: PREFONLINE__Kafka__BootstrapServers
      value: {{ $v.kafka.bootstrapServers | quote }}
    {{- if $v.kafka.bootstrapServers }}
    - name: PREFONLINE__Kafka__SecurityProtocol
      value: {{ $v.kafka.securityProtocol | quote }}
    {{- end }}
    - name: PREFONLINE__Kafka__ConsumerGroup
      value: {{ $v.kafka.consumerGroup | quote }}
    - name: PREFONLINE__Kafka__Topics__Prompts
      value: {{ $v.kafka.topics.prompts | quote }}
    - name: PREFONLINE__Kafka__Topics__Feedback
      value: {{ $v.kafka.topics.feedback | quote }}
    - name: PREFONLINE__Kafka__Topics__Rollouts
      value: {{ $v.kafka.topics.rollouts | quote }}
    - name: PREFONLINE__Kafka__Topics__Policy
      value: {{ $v.kafka.topics.policy | quote }}
    - name: PREFONLINE__Kafka__Topics__DeadLetter
      value: {{ $v.kafka.topics.dlq | quote }}
    {{- if and $v.kafka.bootstrapServers (hasPrefix "SASL" $v.kafka.securityProtocol) }}
    - name: PREFONLINE__Kafka__SaslMechanism
      value: {{ $v.kafka.sasl.mechanism | quote }}
    {{- $saslSecret := ternary ($v.kafka.sasl.learnerExistingSecret | default $v.kafka.sasl.existingSecret) $v.kafka.sasl.existingSecret (eq .component "learner") }}
    - name: PREFONLINE__Kafka__SaslUsername
      valueFrom:
        secretKeyRef:
          name: {{ $saslSecret }}
          key: {{ $v.kafka.sasl.usernameKey }}
    - name: PREFONLINE__Kafka__SaslPassword
      valueFrom:
        secretKeyRef:
          name: {{ $saslSecret }}
          key: {{ $v.kafka.sasl.passwordKey }}
    {{- end }}
    {{- if and $v.kafka.bootstrapServers $v.kafka.ssl.existingSecret }}
    - name: PREFONLINE__Kafka__SslCaLocation
      value: /etc/prefonline/kafka-tls/{{ $v.kafka.ssl.caKey }}
    {{- if $v.kafka.ssl.certificateKey }}
    - name: PREFONLINE__Kafka__SslCertificateLocation
      value: /etc/prefonline/kafka-tls/{{ $v.kafka.ssl.certificateKey }}
    - name: PREFONLINE__Kafka__SslKeyLocation
      value: /etc/prefonline/kafka-tls/{{ $v.kafka.ssl.keyKey }}
    {{- end }}
    {{- end }}
    {{- range $key, $value := $v.config.env }}
    - name: PREFONLINE__{{ $key }}
      value: {{ $value | toString | quote }}
    {{- end }}
  {{- with $v.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: metrics
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: metrics
    periodSeconds: {{ $v.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: metrics
    periodSeconds: {{ $v.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml (index $v .component).resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/prefonline/config
      readOnly: true
    - name: tmp
      mountPath: /tmp
    - name: policy-token
      mountPath: /etc/prefonline/policy-token
      readOnly: true
    {{- if eq .component "generator" }}
    - name: policy-downloads
      mountPath: /var/cache/prefonline/policies
    {{- end }}
    {{- if .mountCheckpoints }}
    - name: checkpoints
      mountPath: /var/lib/prefonline
      {{- if eq .component "generator" }}
      readOnly: true
      {{- end }}
    {{- end }}
    {{- if $v.kafka.ssl.existingSecret }}
    - name: kafka-tls
      mountPath: /etc/prefonline/kafka-tls
      readOnly: true
    {{- end }}
{{- end }}

{{/* Volumes every PrefOnline pod has (the checkpoint volume is added by each workload). */}}
{{- define "prefonline.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include "prefonline.fullname" . }}-config
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmp.sizeLimit }}
- name: policy-token
  secret:
    secretName: {{ include "prefonline.policyTokenSecret" . }}
    defaultMode: 0440
{{- if .Values.kafka.ssl.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.ssl.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
