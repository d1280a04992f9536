{{/* vim: set filetype=mustache: */}}
{{/*
The retrain webhook container's own fields. Fails the render, naming the value, when a Secret
it needs is not named.
*/}}
{{- define "model-exporter.retrainWebhook.container" -}}
{{- with .Values.retrainWebhook -}}
{{- $_ := required "retrainWebhook.tokenSecret.name: name the Secret whose key holds the bearer token Alertmanager sends (kubectl create secret generic retrain-webhook-token --from-literal=token=\"$(openssl rand -hex 32)\")" .tokenSecret.name }}
{{- if not .dryRun }}
{{- $_ = required "retrainWebhook.githubRepo: dryRun is false, so name the repository (owner/name) whose workflow retrains" .githubRepo }}
{{- $_ = required "retrainWebhook.githubTokenSecret.name: dryRun is false, so name the Secret whose key holds the GitHub token" .githubTokenSecret.name }}
{{- end -}}
command:
  - modelmon-ops
  - serve-webhook
args:
  - --port={{ $.Values.containerPort | int64 }}
  - --token-file=/etc/modelmon/retrain-webhook/token
  - --cooldown={{ .cooldown }}
  - --state-file=/tmp/retrain-cooldown.json
  {{- with .githubRepo }}
  - --github-repo={{ . }}
  {{- end }}
  - --github-api-url={{ .githubApiUrl }}
  - --workflow={{ .workflow }}
  - --ref={{ .ref }}
  {{- if not .dryRun }}
  - --no-dry-run
  {{- end }}
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
  {{- toYaml .resources | nindent 2 }}
volumeMounts:
  - name: token
    mountPath: /etc/modelmon/retrain-webhook
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- end -}}
{{- end -}}

{{- define "model-exporter.retrainWebhook.volumes" -}}
- name: token
  secret:
    secretName: {{ .Values.retrainWebhook.tokenSecret.name }}
    items:
      - key: {{ .Values.retrainWebhook.tokenSecret.key }}
        path: token
    defaultMode: 0440
- name: tmp
  emptyDir:
    sizeLimit: 16Mi
{{- end -}}

{{/*
Its environment: the GitHub token, by reference to its Secret, when one is named.
*/}}
{{- define "model-exporter.retrainWebhook.env" -}}
{{- $env := list -}}
{{- with .Values.retrainWebhook.githubTokenSecret -}}
{{- if .name -}}
{{- $env = append $env (dict "name" "GITHUB_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) -}}
{{- end -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}
