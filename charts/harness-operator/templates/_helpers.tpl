{{/* The name of every object: the release name, or fullnameOverride. */}}
{{- define "harness-operator.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{- define "harness-operator.labels" -}}
app.kubernetes.io/name: harness-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "harness-operator.selector" -}}
app.kubernetes.io/name: harness-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "harness-operator.serviceAccountName" -}}
{{- default (include "harness-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* repository@digest when a digest is set (it wins over the tag), else repository:tag. */}}
{{- define "harness-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The job label of the operator's scrape target, for the alerts. */}}
{{- define "harness-operator.job" -}}
{{- default (printf "%s-metrics" (include "harness-operator.fullname" .)) .Values.prometheusRule.job -}}
{{- end -}}

{{/*
The operator's rules in a namespace it watches: exactly the verbs it uses (docs/install.md).
Writes are server-side apply (PATCH; creating a missing object through apply also needs
`create`). Only HPAs, KEDA ScaledObjects and a rolled-back cron revision's running Jobs are ever
deleted (a track without autoscaling loses its scaler; a rolled-back run stops spending); everything else goes with its HarnessDeployment through owner references.
*/}}
{{- define "harness-operator.rules" -}}
# kopf watches HarnessDeployments (list, watch) and the operator consumes control
# annotations (patch) and writes status (patch on the status subresource).
- apiGroups: [harness.dev]
  resources: [harnessdeployments]
  verbs: [list, watch, patch]
- apiGroups: [harness.dev]
  resources: [harnessdeployments/status]
  verbs: [patch]
# Read by name when an analysis references a template; nothing watches them.
- apiGroups: [harness.dev]
  resources: [harnessanalysistemplates]
  verbs: [get]
# Owned objects: read, server-side applied, and watched (label
# app.kubernetes.io/managed-by=harness-operator) so that drift is undone at once.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, create, patch]
# A worker harness with spec.worker.keda gets a ScaledObject (read, applied, and deleted
# when KEDA scaling is removed). Not watched: KEDA may not be installed; resync corrects drift.
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, create, patch, delete]
# A cron harness (spec.shape: cron) has a CronJob per track (the canary's suspended between
# releases). Its runs are Jobs: listed and watched to judge a release, created by hand for
# harness.dev/run-now, and deleted while still running when their revision is rolled back;
# their pods are listed for the run reports (termination messages).
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# By name only: no list, no watch, so the operator cannot enumerate them. The ConfigMaps
# and Secrets a HarnessDeployment references are read, checked and hashed into its
# revision; the model credential's Secret is read, in memory only, for the preflight.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# ConfigMaps also get written: a HarnessDeployment with spec.model owns a `<name>-controls`
# ConfigMap (the budget's kill switch, which its harness reads), server-side applied.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
# Events on HarnessDeployments (kopf posts core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}
