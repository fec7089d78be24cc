{{- define "kubedag.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{ else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "kubedag.labels" -}}
app.kubernetes.io/name: kubedag
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "kubedag.selector" -}}
app.kubernetes.io/name: kubedag
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubedag.webhookConfigName" -}}
{{- if .Values.watchNamespace }}{{ printf "%s-%s" (include "kubedag.fullname" .) .Values.watchNamespace | trunc 63 | trimSuffix "-" }}{{ else }}{{ include "kubedag.fullname" . }}{{ end }}
{{- end }}

{{- /* The operator's ServiceAccount: serviceAccount.name, else the full name. */ -}}
{{- define "kubedag.serviceAccountName" -}}
{{- default (include "kubedag.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- /* repository:tag, the tag defaulting to the chart's appVersion. */ -}}
{{- define "kubedag.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- /* PromQL label matchers of this release's operator as scraped through the chart's
       ServiceMonitor (job = the Service name). */ -}}
{{- define "kubedag.metricsSelector" -}}
job="{{ include "kubedag.fullname" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}
