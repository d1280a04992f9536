{{/* vim: set filetype=mustache: */}}
{{/*
The pod template every Deployment of the chart runs: the exporter of each variant, the router
and the retrain webhook. One copy of what they share (service account, security contexts, the
image, the http port, extraEnv, scheduling and spreading, pod labels and annotations); each component passes
what is its own:

  root        the chart's context ($)
  component   app.kubernetes.io/component of the pod, and the container's name
  labels      more pod labels that its selector uses (dict), e.g. the variant
  container   YAML of the container's own fields: command, args, probes, resources,
              volumeMounts
  env         its own environment variables (list); extraEnv follows them
  volumes     YAML list of its volumes
  serving     true for pods behind a Service that clients call (exporter, router): they stop
              with a preStop pause and the release's grace period
*/}}
{{- define "model-exporter.podTemplate" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- range $values.extraEnv }}
{{- if and (hasKey . "value") (regexMatch "(?i)(token|secret|password|passwd|api_?key|credential)" .name) }}
{{- fail (printf "extraEnv: %s looks like a secret: give it valueFrom.secretKeyRef, never a literal value in values" .name) }}
{{- end }}
{{- end }}
{{- $selector := merge (include "model-exporter.selectorLabels" $root | fromYaml) (dict "app.kubernetes.io/component" .component) (.labels | default dict) -}}
metadata:
  labels:
    {{- /* the selector's labels win over podLabels of the same name */}}
    {{- merge (deepCopy $selector) $values.podLabels | toYaml | nindent 4 }}
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
  {{- with $values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "model-exporter.image" $root | quote }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      {{- .container | nindent 6 }}
      {{- with concat (.env | default list) $values.extraEnv }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
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
  {{- with $values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    {{- $constraint := deepCopy . }}
    {{- if not $constraint.labelSelector }}
    {{- $_ := set $constraint "labelSelector" (dict "matchLabels" $selector) }}
    {{- end }}
    - {{ toYaml $constraint | nindent 6 | trim }}
    {{- end }}
  {{- end }}
{{- end -}}
