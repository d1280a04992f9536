{{/* vim: set filetype=mustache: */}}
{{/*
The exporter container's own fields, for one variant: dict {root, variant}.
*/}}
{{- define "model-exporter.exporter.container" -}}
{{- $values := .root.Values -}}
{{- $spec := .variant.spec -}}
command:
  - modelmon-exporter
args:
  - --port={{ $values.containerPort | int64 }}
  - --variant={{ .variant.name }}
  {{- if include "model-exporter.engineDriven" .root }}
  - --variant-labels-file=/etc/podinfo/labels
  {{- end }}
  {{- if eq $values.delivery.engine "flagger" }}
  - --variant-primary-label={{ include "model-exporter.flagger.selectorLabel" .root }}
  {{- end }}
  - --model-path={{ $spec.modelPath }}
  - --user-id={{ $values.userId }}
  - --quality-window={{ $values.quality.window | int64 }}
  - --accuracy-tolerance={{ $values.quality.accuracyTolerance }}
  - --drift-window={{ $values.drift.window | int64 }}
  - --drift-min-samples={{ min $values.drift.minSamples $values.drift.window | int64 }}
  - --feedback-max-entries={{ $values.feedback.maxEntries | int64 }}
  - --feedback-ttl-seconds={{ $values.feedback.ttlSeconds }}
  - --max-batch-rows={{ $values.limits.maxBatchRows | int64 }}
  - --max-body-bytes={{ $values.limits.maxBodyBytes | int64 }}
  - --batching={{ $values.batching.enabled }}
  - --http-metrics={{ $values.httpMetrics.enabled }}
  - --batching-max-rows={{ $values.batching.maxRows | int64 }}
  - --batching-max-wait-seconds={{ $values.batching.maxWaitSeconds }}
  - --batching-queue-rows={{ $values.batching.queueRows | int64 }}
  {{- with $values.feedbackDataset }}
  {{- if .enabled }}
  - --feedback-dataset-url={{ .url | default (include "model-exporter.feedbackDataset.mountPath" $.root) }}
  - --feedback-dataset-flush-rows={{ .flushRows | int64 }}
  - --feedback-dataset-flush-seconds={{ .flushSeconds | int64 }}
  - --feedback-dataset-max-buffered-rows={{ .maxBufferedRows | int64 }}
  {{- end }}
  {{- end }}
  {{- with $spec.faultInjection }}
  {{- if .latencySeconds }}
  - --inject-latency-seconds={{ .latencySeconds }}
  {{- end }}
  {{- if .errorRatio }}
  - --inject-error-ratio={{ .errorRatio }}
  {{- end }}
  {{- if .predictionBias }}
  - --inject-prediction-bias={{ .predictionBias }}
  {{- end }}
  {{- end }}
{{- with $values.startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
livenessProbe:
  {{- toYaml $values.livenessProbe | nindent 2 }}
readinessProbe:
  {{- toYaml $values.readinessProbe | nindent 2 }}
resources:
  {{- toYaml $values.resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- with include "model-exporter.feedbackDataset.mountPath" .root }}
  - name: feedback-dataset
    mountPath: {{ . }}
  {{- end }}
  {{- if include "model-exporter.engineDriven" .root }}
  - name: podinfo
    mountPath: /etc/podinfo
    readOnly: true
  {{- end }}
  {{- with $values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "model-exporter.exporter.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if include "model-exporter.feedbackDataset.mountPath" . }}
- name: feedback-dataset
  {{- with include "model-exporter.feedbackDataset.claimName" . }}
  persistentVolumeClaim:
    claimName: {{ . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- if include "model-exporter.engineDriven" . }}
# The pod's labels, which name its variant; the kubelet rewrites the file when Argo Rollouts
# relabels the pod on promotion.
- name: podinfo
  downwardAPI:
    items:
      - path: labels
        fieldRef:
          fieldPath: metadata.labels
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}
