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
The umbrella reaches the exporter subchart through `index .Subcharts "model-exporter"`: the
subchart's own context (its .Values, .Chart and .Release), so its helpers (fullname,
monitorLabels, variants, retrainWebhookName) are called as they are, never re-implemented here.
*/}}

{{/*
Label matchers of this release's model series, and of its scrape targets.
*/}}
{{- define "model-monitoring.seriesSelector" -}}
{{- $exporter := index .Subcharts "model-exporter" -}}
{{- printf "namespace=%q,user_id=%q" .Release.Namespace (toString $exporter.Values.userId) -}}
{{- end -}}

{{/*
The Service of each exporter variant this release runs (model-exporter.variantService).
*/}}
{{- define "model-monitoring.exporterServices" -}}
{{- $exporter := index .Subcharts "model-exporter" -}}
{{- $services := list -}}
{{- range include "model-exporter.variants" $exporter | fromJsonArray -}}
{{- $services = append $services (include "model-exporter.variantService" (dict "root" $exporter "variant" .name)) -}}
{{- end -}}
{{- toJson $services -}}
{{- end -}}

{{- define "model-monitoring.targetSelector" -}}
{{- $exporter := index .Subcharts "model-exporter" -}}
{{- $services := list -}}
{{- range include "model-exporter.variantNames" $exporter | fromJsonArray -}}
{{- $services = append $services (include "model-exporter.variantService" (dict "root" $exporter "variant" .) | regexQuoteMeta) -}}
{{- end -}}
{{- printf "namespace=%q,service=~%q" .Release.Namespace (join "|" $services) -}}
{{- end -}}

{{/*
One absent() per exporter Service: a Deployment scaled to zero leaves no `up` series at all,
which `up == 0` cannot see. Each yields {namespace, service} from its matchers.
*/}}
{{- define "model-monitoring.absentTargets" -}}
{{- $terms := list -}}
{{- range include "model-monitoring.exporterServices" . | fromJsonArray -}}
{{- $terms = append $terms (printf "absent(up{namespace=%q,service=%q})" $.Release.Namespace .) -}}
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
The label that marks the alerts that ask for a retrain (rules/alerts.yaml sets it on the quality
alerts): the retrain route matches it, the webhook acts on it. modelmon.contract names it too,
and tests/test_contract.py checks that the two agree.
*/}}
{{- define "model-monitoring.retrainMatcher" -}}
name: action
matchType: "="
value: retrain
{{- end -}}

{{/*
The in-cluster URL Alertmanager posts the retrain alerts to: the subchart's retrain webhook
Service, namespace-qualified, since Alertmanager runs in the stack's namespace.
*/}}
{{- define "model-monitoring.retrainWebhookURL" -}}
{{- $exporter := index .Subcharts "model-exporter" -}}
{{- printf "http://%s.%s.svc:%d/alerts" (include "model-exporter.retrainWebhookName" $exporter) .Release.Namespace ($exporter.Values.service.port | int) -}}
{{- end -}}

{{/*
A Service of the kube-prometheus-stack this release installs, by key of .Values.stackServices.
*/}}
{{- define "model-monitoring.stackService" -}}
{{- tpl (index .root.Values.stackServices .key) .root -}}
{{- end -}}
