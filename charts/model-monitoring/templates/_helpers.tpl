{{/* vim: set filetype=mustache: */}}
{{/*
Name prefix of the umbrella's own objects, truncated to leave room for suffixes.
*/}}
{{- define "model-monitoring.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "model-monitoring.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of every object of the umbrella chart.
*/}}
{{- define "model-monitoring.labels" -}}
helm.sh/chart: {{ include "model-monitoring.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: model-monitoring
{{- end -}}

{{/*
The exporter subchart's values and full name, seen from the umbrella.
*/}}
{{- define "model-monitoring.exporterValues" -}}
{{- toYaml (index .Values "model-exporter") -}}
{{- end -}}

{{- define "model-monitoring.exporterFullname" -}}
{{- $context := dict "Values" (index .Values "model-exporter") "Release" .Release "Chart" (dict "Name" "model-exporter") -}}
{{- include "model-exporter.fullname" $context -}}
{{- end -}}

{{/*
Labels the monitoring stack's selectors look for (same rule as the exporter's ServiceMonitor).
*/}}
{{- define "model-monitoring.monitorLabels" -}}
{{- $monitoring := (index .Values "model-exporter").monitoring -}}
release: {{ $monitoring.stackRelease | default .Release.Name | quote }}
{{- with $monitoring.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Label matchers of this release's model series, and of its scrape targets.
*/}}
{{- define "model-monitoring.seriesSelector" -}}
{{- printf "namespace=%q,user_id=%q" .Release.Namespace (toString (index .Values "model-exporter").userId) -}}
{{- end -}}

{{- define "model-monitoring.targetSelector" -}}
{{- printf "namespace=%q,service=~%q" .Release.Namespace (printf "%s-(stable|canary)" (include "model-monitoring.exporterFullname" .)) -}}
{{- end -}}

{{/*
One absent() per exporter Service: a Deployment scaled to zero leaves no `up` series at all,
which `up == 0` cannot see. Each yields {namespace, service} from its matchers.
*/}}
{{- define "model-monitoring.absentTargets" -}}
{{- $exporter := index .Values "model-exporter" -}}
{{- $variants := list "stable" -}}
{{- if $exporter.canary.enabled }}{{ $variants = append $variants "canary" }}{{ end -}}
{{- $terms := list -}}
{{- range $variants -}}
{{- $terms = append $terms (printf "absent(up{namespace=%q,service=%q})" $.Release.Namespace (printf "%s-%s" (include "model-monitoring.exporterFullname" $) .)) -}}
{{- end -}}
{{- join " or " $terms -}}
{{- end -}}

{{/*
Fill the placeholders of a rules/ expression or annotation.
Arguments: (list $ "text" threshold-or-nil)
*/}}
{{- define "model-monitoring.fillRuleText" -}}
{{- $root := index . 0 -}}
{{- $text := index . 1 | replace "__SELECTOR__" (include "model-monitoring.seriesSelector" $root) | replace "__TARGET_SELECTOR__" (include "model-monitoring.targetSelector" $root) | replace "__ABSENT_TARGETS__" (include "model-monitoring.absentTargets" $root) | replace "__WINDOW__" $root.Values.rules.window -}}
{{- if ne (index . 2) nil -}}
{{- $text = $text | replace "__THRESHOLD__" (toString (index . 2)) -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/*
The exporter subchart's retrain webhook, seen from the umbrella: the alerts it acts on, and the
in-cluster URL Alertmanager posts them to (its Service, namespace-qualified: Alertmanager runs in
the stack's namespace).
*/}}
{{- define "model-monitoring.retrainAlerts" -}}
ModelPerformanceDegraded|ModelR2Low|ModelAccuracyDropped|ModelDriftDetected
{{- end -}}

{{- define "model-monitoring.retrainWebhookURL" -}}
{{- $exporter := index .Values "model-exporter" -}}
{{- $context := dict "Values" $exporter "Release" .Release "Chart" (dict "Name" "model-exporter") -}}
{{- printf "http://%s.%s.svc:%d/alerts" (include "model-exporter.retrainWebhookName" $context) .Release.Namespace ($exporter.service.port | int) -}}
{{- end -}}
