{{/* vim: set filetype=mustache: */}}
{{/*
The gate's webhook server under Flagger (modelmon-ops serve-gate): its container's own fields.
The gate's values become its flags one by one; tests/chart/test_delivery.py checks that they
parse back into the GatePolicy the values say.
*/}}
{{- define "model-exporter.gateServer.container" -}}
{{- $gate := .Values.delivery.gate -}}
command:
  - modelmon-ops
  - serve-gate
args:
  - --port={{ .Values.containerPort | int64 }}
  - --prometheus-url={{ include "model-exporter.delivery.prometheusAddress" . }}
  - --user={{ .Values.userId }}
  - --namespace={{ .Release.Namespace }}
  - --window={{ $gate.window }}
  - --soak={{ .Values.delivery.soak }}
  - --label-delay={{ $gate.labelDelay }}
  - --alpha={{ $gate.alpha }}
  - --mixture-sd={{ $gate.mixtureSd }}
  - --min-feedback={{ $gate.minFeedback | int64 }}
  - --min-coverage={{ $gate.minCoverage }}
  - --non-inferiority={{ $gate.nonInferiority }}
  - --max-error-ratio={{ $gate.maxErrorRatio }}
  - --max-latency-p95-seconds={{ $gate.maxLatencyP95Seconds }}
  - --max-drift-gap={{ $gate.maxDriftGap }}
  - --max-prediction-shift={{ $gate.maxPredictionShift }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 5
  failureThreshold: 2
resources:
  {{- toYaml .Values.delivery.flagger.gateServer.resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}
