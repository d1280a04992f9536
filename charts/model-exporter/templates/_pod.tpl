{{/* vim: set filetype=mustache: */}}
{{/*
The pod template every Deployment of the chart runs: the exporter of each variant, the router
and the retrain webhook. One copy of what they share (service account, security contexts, the
image, the http port, scheduling settings, pod labels and annotations); each component passes
what is its own:

  root        the chart's context ($)
  component   app.kubernetes.io/component of the pod, and the container's name
  labels      more pod labels that its selector uses (dict), e.g. the variant
  container   YAML of the container's own fields: command, args, env, probes, resources,
              volumeMounts
  volumes     YAML list of its volumes
  serving     true for pods behind a Service that clients call (exporter, router): they stop
              with a preStop pause and the release's grace period
*/}}
{{- define "model-exporter.podTemplate" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
metadata:
  labels:
    {{- include "model-exporter.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "model-exporter.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $values.serviceAccount.automountToken }}
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $values.podSecurityContext | nindent 4 }}
  {{- if .serving }}
  {{- include "model-exporter.stopping" $root | nindent 2 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "model-exporter.image" $root | quote }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      {{- .container | nindent 6 }}
      ports:
        - name: http
          containerPort: {{ $values.containerPort | int64 }}
          protocol: TCP
      {{- if .serving }}
      {{- include "model-exporter.preStop" $root | nindent 6 }}
      {{- end }}
      securityContext:
        {{- toYaml $values.securityContext | nindent 8 }}
  volumes:
    {{- .volumes | nindent 4 }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
