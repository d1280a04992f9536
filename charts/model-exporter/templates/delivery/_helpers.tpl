{{/* vim: set filetype=mustache: */}}
{{/*
Whether a delivery engine (Argo Rollouts or Flagger) moves the canary's traffic instead of the
router. Prints "true" or nothing, for `if`.
*/}}
{{- define "model-exporter.engineDriven" -}}
{{- if ne .Values.delivery.engine "none" -}}true{{- end -}}
{{- end -}}

{{/*
Refuses the values an engine cannot work with, naming the value to change.
*/}}
{{- define "model-exporter.delivery.validate" -}}
{{- if include "model-exporter.engineDriven" . -}}
{{- if .Values.canary.enabled -}}
{{- fail (printf "delivery.engine=%s: set canary.enabled=false; the engine makes each new revision (a new stable.modelPath or image) the canary and moves traffic itself" .Values.delivery.engine) -}}
{{- end -}}
{{- if not .Values.gatewayAPI.enabled -}}
{{- fail (printf "delivery.engine=%s: set gatewayAPI.enabled=true; the engine moves traffic by the HTTPRoute's weights (ingress-nginx is not supported: its canary Ingress copies the feedback paths and splits them by weight too)" .Values.delivery.engine) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The label Flagger selects the exporter's pods by: the first of its default --selector-labels
(app, name, app.kubernetes.io/name) that the Deployment's selector has (pkg/canary/
deployment_controller.go, getSelectorLabel). Its value is the Deployment's name on canary pods
and gains -primary on the primary Deployment Flagger copies; nothing else in the release carries
it, so Flagger's Services select the exporter's pods only.
*/}}
{{- define "model-exporter.flagger.selectorLabel" -}}
app
{{- end -}}

{{/*
The Service in front of a variant's pods: dict {root, variant (a name)}. Flagger names its own
<target>-primary and <target>-canary.
*/}}
{{- define "model-exporter.variantService" -}}
{{- $fullname := include "model-exporter.fullname" .root -}}
{{- if and (eq .root.Values.delivery.engine "flagger") (eq .variant "stable") -}}
{{- printf "%s-primary" $fullname -}}
{{- else -}}
{{- printf "%s-%s" $fullname .variant -}}
{{- end -}}
{{- end -}}

{{/*
The pod labels that tell a variant's exporter pods from the other's: dict {root, variant}.
*/}}
{{- define "model-exporter.variantPodLabels" -}}
{{- if eq .root.Values.delivery.engine "flagger" -}}
{{ include "model-exporter.flagger.selectorLabel" .root }}: {{ include "model-exporter.fullname" .root }}{{ if eq .variant "stable" }}-primary{{ end }}
{{- else -}}
modelmon.io/variant: {{ .variant }}
{{- end -}}
{{- end -}}

{{/*
The Prometheus an engine queries.
*/}}
{{- define "model-exporter.delivery.prometheusAddress" -}}
{{- with .Values.delivery.prometheusAddress -}}
{{- . -}}
{{- else -}}
{{- printf "http://%s-kube-prometheus-prometheus.%s.svc:9090" (.Values.monitoring.stackRelease | default .Release.Name) (include "model-exporter.stackNamespace" .) -}}
{{- end -}}
{{- end -}}

{{/*
The gate's verdict as PromQL: 1 promote, 0 hold, -1 roll back. The text is generated from
modelmon.gate.promql (files/gate-verdict.promql, `make gate-query`); this fills in the values.
*/}}
{{- define "model-exporter.delivery.verdictQuery" -}}
{{- $gate := .Values.delivery.gate -}}
{{- $offset := "" -}}
{{- if not (regexMatch "^0+[a-z]*$" $gate.labelDelay) -}}
{{- $offset = printf " offset %s" $gate.labelDelay -}}
{{- end -}}
{{- $params := dict
    "matchers" (printf "user_id=%q,namespace=%q" .Values.userId .Release.Namespace)
    "window" $gate.window
    "labellableOffset" $offset
    "alpha" $gate.alpha
    "mixtureSd" $gate.mixtureSd
    "minFeedback" $gate.minFeedback
    "minCoverage" $gate.minCoverage
    "nonInferiority" $gate.nonInferiority
    "maxErrorRatio" $gate.maxErrorRatio
    "maxLatencyP95Seconds" $gate.maxLatencyP95Seconds
    "maxDriftGap" $gate.maxDriftGap
    "maxPredictionShift" $gate.maxPredictionShift -}}
{{- tpl (.Files.Get "files/gate-verdict.promql") (dict "gate" $params "Template" .Template) | trim -}}
{{- end -}}

{{/*
Relabelings of a monitor's targets under Argo Rollouts: a pod's role changes while it runs (Argo
Rollouts relabels a promoted canary's pods), so the `variant` of its series is its pod label
now, not the role its process was started in. The process's own label, renamed
exported_variant by Prometheus, is dropped after the scrape. (Under Flagger a pod keeps its role
for life, and the exporter reads it from its labels at start.)
*/}}
{{- define "model-exporter.delivery.relabelings" -}}
{{- if eq .Values.delivery.engine "argoRollouts" -}}
- sourceLabels:
    - __meta_kubernetes_pod_label_modelmon_io_variant
  regex: (.+)
  targetLabel: variant
{{- end -}}
{{- end -}}

{{- define "model-exporter.delivery.metricRelabelings" -}}
{{- if eq .Values.delivery.engine "argoRollouts" -}}
- regex: exported_variant
  action: labeldrop
{{- end -}}
{{- end -}}
