{{/* The release's full name: the release name, with "-bindery" unless it says bindery. */}}
{{- define "bindery.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bindery.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bindery.labels" -}}
{{ include "bindery.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bindery.serviceAccountName" -}}
{{- default (include "bindery.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "bindery.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace -}}
{{- end -}}

{{- define "bindery.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Subjects of the WDS bindings: the given ones, or the chart's ServiceAccount. */}}
{{- define "bindery.wdsSubjects" -}}
{{- if .Values.rbac.wds.subjects -}}
{{ toYaml .Values.rbac.wds.subjects }}
{{- else -}}
- kind: ServiceAccount
  name: {{ include "bindery.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
{{- end -}}
