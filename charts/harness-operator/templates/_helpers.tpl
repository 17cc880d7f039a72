{{- define "harness-operator.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
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
