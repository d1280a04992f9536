{{/* vim: set filetype=mustache: */}}
{{/*
Whether a delivery engine (Argo Rollouts) moves the canary's traffic instead of the router.
Prints "true" or nothing, for `if`.
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
    "maxDriftGap" $gate.maxDriftGap -}}
{{- tpl (.Files.Get "files/gate-verdict.promql") (dict "gate" $params "Template" .Template) | trim -}}
{{- end -}}

{{/*
Relabelings of a monitor's targets under an engine: a pod's role changes while it runs (Argo
Rollouts relabels a promoted canary's pods), so the `variant` of its series is its pod label
now, not the role its process was started in. The process's own label, renamed
exported_variant by Prometheus, is dropped after the scrape.
*/}}
{{- define "model-exporter.delivery.relabelings" -}}
{{- if include "model-exporter.engineDriven" . -}}
- sourceLabels:
    - __meta_kubernetes_pod_label_modelmon_io_variant
  regex: (.+)
  targetLabel: variant
{{- end -}}
{{- end -}}

{{- define "model-exporter.delivery.metricRelabelings" -}}
{{- if include "model-exporter.engineDriven" . -}}
- regex: exported_variant
  action: labeldrop
{{- end -}}
{{- end -}}
