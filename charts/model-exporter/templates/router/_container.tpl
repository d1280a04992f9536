{{/* vim: set filetype=mustache: */}}
{{/*
The router container's own fields.
*/}}
{{- define "model-exporter.router.container" -}}
{{- $fullname := include "model-exporter.fullname" . -}}
command:
  - modelmon-router
args:
  - --port={{ .Values.containerPort | int64 }}
  - --stable-url=http://{{ $fullname }}-stable:{{ .Values.service.port | int64 }}
  - --canary-url=http://{{ $fullname }}-canary:{{ .Values.service.port | int64 }}
  - --weight-file=/etc/modelmon/canary/weight
  - --user-id={{ .Values.userId }}
  - --user-header={{ .Values.router.userHeader }}
  - --timeout-seconds={{ .Values.router.timeoutSeconds }}
  - --max-body-bytes={{ .Values.limits.maxBodyBytes | int64 }}
{{- with .Values.startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
livenessProbe:
  {{- toYaml .Values.livenessProbe | nindent 2 }}
readinessProbe:
  {{- toYaml .Values.readinessProbe | nindent 2 }}
resources:
  {{- toYaml .Values.router.resources | nindent 2 }}
volumeMounts:
  - name: canary-weight
    mountPath: /etc/modelmon/canary
    readOnly: true
{{- end -}}

{{- define "model-exporter.router.volumes" -}}
- name: canary-weight
  configMap:
    name: {{ include "model-exporter.fullname" . }}-canary
{{- end -}}
