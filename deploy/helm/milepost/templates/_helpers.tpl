{{/* Names, labels and the pieces every Milepost pod shares. */}}

{{- define "milepost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "milepost.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "milepost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels; call with (dict "root" $ "component" "engine"). */}}
{{- define "milepost.labels" -}}
helm.sh/chart: {{ include "milepost.chart" .root }}
{{ include "milepost.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: milepost
{{- end }}

{{- define "milepost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "milepost.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "milepost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "milepost.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "milepost.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Kafka bootstrap servers: the chart's Strimzi cluster, or the external one. */}}
{{- define "milepost.kafkaBootstrap" -}}
{{- if .Values.strimzi.enabled }}
{{- printf "%s-kafka-bootstrap:9092" (include "milepost.fullname" .) }}
{{- else }}
{{- required "kafka.bootstrapServers is required (or set strimzi.enabled=true)" .Values.kafka.bootstrapServers }}
{{- end }}
{{- end }}

{{/*
The topic whose partitions cap a consumer's replicas: a consumer group cannot use more
members than its topic has partitions; the others sit idle. Empty for ingest (no consumer).
*/}}
{{- define "milepost.partitionCap" -}}
{{- $topics := dict "engine" "events" "scoring" "events" "messaging" "triggers" }}
{{- $topic := get $topics .component }}
{{- if $topic }}{{ get .root.Values.topics.partitions $topic }}{{ end }}
{{- end }}

{{- define "milepost.partitionTopic" -}}
{{- get (dict "engine" "events" "scoring" "events" "messaging" "triggers") .component }}
{{- end }}

{{/* Settings every service and Job reads (shared/settings.py, MILEPOST_*). */}}
{{- define "milepost.runtimeEnv" -}}
- name: MILEPOST_BUS
  value: kafka
- name: MILEPOST_KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "milepost.kafkaBootstrap" . | quote }}
- name: MILEPOST_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.topics.replicationFactor | quote }}
- name: MILEPOST_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: MILEPOST_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
- name: MILEPOST_HOST
  value: 0.0.0.0
- name: MILEPOST_PORT
  value: "8000"
- name: MILEPOST_DATA_DIR
  value: /tmp/milepost
- name: MILEPOST_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: MILEPOST_LOG_FORMAT
  value: json
- name: MILEPOST_TRACING_EXPORTER
  value: {{ .Values.tracing.exporter | quote }}
- name: MILEPOST_TRACING_ENDPOINT
  value: {{ .Values.tracing.endpoint | quote }}
- name: MILEPOST_TRACING_SAMPLE_RATIO
  value: {{ .Values.tracing.sampleRatio | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod-level pieces of a Job pod; call with the root context. */}}
{{- define "milepost.jobPod" -}}
serviceAccountName: {{ include "milepost.fullname" . }}-hooks
automountServiceAccountToken: false
restartPolicy: Never
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/* The container-level pieces of a Job container; call with the root context. */}}
{{- define "milepost.jobContainer" -}}
image: {{ include "milepost.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .Values.jobs.resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* Refuse replica counts a consumer group cannot use; call with (dict "root" $ "component" name). */}}
{{- define "milepost.checkReplicas" -}}
{{- $values := get .root.Values .component }}
{{- $cap := include "milepost.partitionCap" . }}
{{- if $cap }}
{{- $topic := include "milepost.partitionTopic" . }}
{{- $most := int $values.replicaCount }}
{{- if $values.autoscaling.enabled }}{{ $most = int $values.autoscaling.maxReplicas }}{{ end }}
{{- if gt $most (int $cap) }}
{{- fail (printf "%s: %d replicas but topics.partitions.%s is %d; a Kafka consumer group cannot use more consumers than the topic has partitions (the others would sit idle), so lower %s.%s or raise the partitions" .component $most $topic (int $cap) .component (ternary "autoscaling.maxReplicas" "replicaCount" $values.autoscaling.enabled)) }}
{{- end }}
{{- end }}
{{- if and $values.autoscaling.enabled (gt (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- fail (printf "%s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" .component (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}

{{/* The definitions ConfigMap a service mounts: an existing one, or the chart's. */}}
{{- define "milepost.definitionsConfigMap" -}}
{{- $set := get .root.Values.definitions .kind }}
{{- default (printf "%s-%s" (include "milepost.fullname" .root) (kebabcase .kind)) $set.existingConfigMap }}
{{- end }}

{{- define "milepost.hasDefinitions" -}}
{{- $set := get .root.Values.definitions .kind }}
{{- if or $set.existingConfigMap $set.files }}true{{ end }}
{{- end }}
