{{/* Names. */}}
{{- define "repovault.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "repovault.fullname" -}}
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

{{- define "repovault.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Kubernetes recommended labels. */}}
{{- define "repovault.labels" -}}
helm.sh/chart: {{ include "repovault.chart" . }}
{{ include "repovault.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: repovault
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "repovault.selectorLabels" -}}
app.kubernetes.io/name: {{ include "repovault.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "repovault.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "repovault.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "repovault.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "repovault.configMapName" -}}
{{- default (include "repovault.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* The Secret holding the store password and friends; empty when there is none. */}}
{{- define "repovault.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.create }}
{{- include "repovault.fullname" . }}
{{- end }}
{{- end }}

{{- define "repovault.storeClaimName" -}}
{{- default (printf "%s-store" (include "repovault.fullname" .)) .Values.store.persistence.existingClaim }}
{{- end }}

{{- define "repovault.cacheClaimName" -}}
{{- default (printf "%s-cache" (include "repovault.fullname" .)) .Values.cache.persistence.existingClaim }}
{{- end }}

{{/*
Global flags put before every command. The daemon, backup and forget commands all take them.
*/}}
{{- define "repovault.globalArgs" -}}
- "--log-format"
- {{ .Values.logFormat | quote }}
{{- end }}

{{/*
The pod spec shared by every mode.
Arguments (a dict): root (the chart context), component, args (list), cacheVolume (a volume
source as a dict, or nil when the caller adds a volumeClaimTemplate named "cache"), shard (bool),
restartPolicy, ports (bool).
*/}}
{{- define "repovault.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $secret := include "repovault.secretName" $root -}}
{{- include "repovault.checkStore" $root -}}
serviceAccountName: {{ include "repovault.serviceAccountName" $root }}
automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
restartPolicy: {{ .restartPolicy }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
containers:
  - name: repovault
    image: {{ include "repovault.image" $root | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- include "repovault.globalArgs" $root | nindent 6 }}
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
      {{- range $v.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    env:
      - name: REPOVAULT_CONFIG
        value: /etc/repovault/repovault.toml
      - name: REPOVAULT_CACHE_DIR
        value: /var/cache/repovault
      {{- with $v.store.url }}
      - name: REPOVAULT_STORE
        value: {{ . | quote }}
      {{- end }}
      {{- if $secret }}
      - name: REPOVAULT_PASSWORD_FILE
        value: /run/secrets/repovault/{{ $v.secret.passwordKey }}
      # Read by the S3 client only when the file exists (S3 stores without other credentials).
      - name: AWS_SHARED_CREDENTIALS_FILE
        value: /run/secrets/repovault/{{ $v.secret.awsCredentialsKey }}
      {{- end }}
      - name: REPOVAULT_LOG
        value: {{ $v.logLevel | quote }}
      - name: TMPDIR
        value: /tmp
      # The root file system is read-only; anything git or ssh might want to keep in $HOME goes to /tmp.
      - name: HOME
        value: /tmp
      {{- if .shard }}
      # The Job completion index (0 .. shards-1), expanded as $(REPOVAULT_SHARD_INDEX) in args.
      - name: REPOVAULT_SHARD_INDEX
        valueFrom:
          fieldRef:
            fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
      {{- end }}
      {{- with $v.env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if .ports }}
    ports:
      - name: http
        containerPort: {{ $v.daemon.port }}
        protocol: TCP
    {{- with $v.daemon.startupProbe }}
    startupProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $v.daemon.livenessProbe }}
    livenessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $v.daemon.readinessProbe }}
    readinessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- end }}
    {{- with $v.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/repovault
        readOnly: true
      {{- if $secret }}
      - name: secrets
        mountPath: /run/secrets/repovault
        readOnly: true
      {{- end }}
      - name: cache
        mountPath: /var/cache/repovault
      {{- if include "repovault.storeVolume" $root }}
      - name: store
        mountPath: /var/lib/repovault
      {{- end }}
      - name: tmp
        mountPath: /tmp
volumes:
  - name: config
    configMap:
      name: {{ include "repovault.configMapName" $root }}
      items:
        - key: repovault.toml
          path: repovault.toml
  {{- if $secret }}
  - name: secrets
    secret:
      secretName: {{ $secret }}
      defaultMode: 288  # 0440: owner root, group = fsGroup
  {{- end }}
  {{- with .cacheVolume }}
  - name: cache
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if include "repovault.storeVolume" $root }}
  - name: store
    persistentVolumeClaim:
      claimName: {{ include "repovault.storeClaimName" $root }}
  {{- end }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ $v.tmp.sizeLimit }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata: labels plus a checksum so a config change rolls the daemon. */}}
{{- define "repovault.podMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "repovault.selectorLabels" $root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ $root.Values.config | sha256sum }}
  {{- with $root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "repovault.emptyCache" -}}
emptyDir:
  sizeLimit: {{ .Values.cache.sizeLimit }}
{{- end }}

{{/* The Indexed Job spec of sharded mode, for a Job or a CronJob's jobTemplate. */}}
{{- define "repovault.shardedJobSpec" -}}
{{- $s := .root.Values.sharded -}}
completionMode: Indexed
completions: {{ $s.shards }}
parallelism: {{ $s.shards }}
backoffLimitPerIndex: {{ $s.backoffLimitPerIndex }}
activeDeadlineSeconds: {{ $s.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ $s.ttlSecondsAfterFinished }}
podFailurePolicy:
  rules:
    # Exit 2 is a usage or config error: every shard would fail the same way.
    - action: FailJob
      onExitCodes:
        containerName: repovault
        operator: In
        values: [2]
    # An evicted or preempted pod is not the shard's fault; run it again without counting it.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  metadata:
    {{- include "repovault.podMetadata" (dict "root" .root "component" "shard") | nindent 4 }}
  spec:
    {{- include "repovault.podSpec" (dict "root" .root "args" .args "cacheVolume" .cache "restartPolicy" "Never" "shard" true) | nindent 4 }}
{{- end }}

{{/* A local store must live on the store volume: the root file system is read-only. */}}
{{- define "repovault.checkStore" -}}
{{- $url := .Values.store.url -}}
{{- if and $url (not (regexMatch "^(s3|opendal):" $url)) -}}
{{- if not .Values.store.persistence.enabled -}}
{{- fail "store.url is a local path: enable store.persistence (or use an s3: store)" -}}
{{- end -}}
{{- if not (hasPrefix "/var/lib/repovault/" (trimPrefix "local:" $url)) -}}
{{- fail "a local store.url must be under /var/lib/repovault/, where the store volume is mounted" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* "true" when pods mount the store volume: persistence on, and the store is not remote. */}}
{{- define "repovault.storeVolume" -}}
{{- if and .Values.store.persistence.enabled (not (regexMatch "^(s3|opendal):" .Values.store.url)) -}}
true
{{- end -}}
{{- end }}
