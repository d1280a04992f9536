{{/* vim: set filetype=mustache: */}}
{{/*
Chart name, truncated to leave room for the suffixes that objects add.
*/}}
{{- define "model-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name: release-chart, or the release alone when it already contains the chart
name. Truncated to 40 characters so that "-stable", "-canary" and "-test" suffixes still fit the
63 characters of a label value or Service name.
*/}}
{{- define "model-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "model-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels that never change for the life of a release: what selectors use.
*/}}
{{- define "model-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object of the chart.
*/}}
{{- define "model-exporter.labels" -}}
helm.sh/chart: {{ include "model-exporter.chart" . }}
{{ include "model-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: model-monitoring
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels that a monitoring stack's selectors look for on ServiceMonitors and PrometheusRules
(kube-prometheus-stack selects `release: <its release name>` by default). Without a
stackRelease, the stack is taken to be this release's own (the platform profile).
*/}}
{{- define "model-exporter.monitorLabels" -}}
release: {{ .Values.monitoring.stackRelease | default .Release.Name | quote }}
{{- with .Values.monitoring.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "model-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "model-exporter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "model-exporter.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The variant names, the chart's one copy of modelmon.contract.VARIANTS (tests/test_contract.py
checks they agree); each is also the key of its values (stable, canary).
*/}}
{{- define "model-exporter.variantNames" -}}
{{- toJson (list "stable" "canary") -}}
{{- end -}}

{{/*
The variants to deploy, as a list of dicts {name, spec}: those whose values have no `enabled`
(stable) or have it true.
*/}}
{{- define "model-exporter.variants" -}}
{{- $variants := list -}}
{{- range $name := include "model-exporter.variantNames" . | fromJsonArray -}}
{{- $spec := index $.Values $name -}}
{{- if or (not (hasKey $spec "enabled")) $spec.enabled -}}
{{- $variants = append $variants (dict "name" $name "spec" $spec) -}}
{{- end -}}
{{- end -}}
{{- toJson $variants -}}
{{- end -}}

{{/*
Namespace of that stack: the shared stack's (monitoring.stackNamespace) when this release
attaches to one, else this release's own, where it installed the stack itself.
*/}}
{{- define "model-exporter.stackNamespace" -}}
{{- if .Values.monitoring.stackRelease -}}
{{- .Values.monitoring.stackNamespace -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
The retrain webhook's object name.
*/}}
{{- define "model-exporter.retrainWebhookName" -}}
{{- printf "%s-retrain-webhook" (include "model-exporter.fullname" .) -}}
{{- end -}}

{{/*
How a serving pod stops: it keeps taking connections for preStopSleepSeconds, so kube-proxy, an
ingress controller and the router's pool let it go first, then gets SIGTERM and drains.
*/}}
{{- define "model-exporter.stopping" -}}
{{- if ge (.Values.preStopSleepSeconds | int) (.Values.terminationGracePeriodSeconds | int) -}}
{{- fail "preStopSleepSeconds must be shorter than terminationGracePeriodSeconds: the pod needs time to drain after it" -}}
{{- end -}}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds | int }}
{{- end -}}

{{- define "model-exporter.preStop" -}}
{{- if .Values.preStopSleepSeconds }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.preStopSleepSeconds | int }}"]
{{- end }}
{{- end -}}

{{/*
Namespaces of the gateway's data plane, as a JSON list: gatewayAPI.dataPlaneNamespaces, else
the namespaces of the parentRefs (a parentRef without one is in the release's namespace).
*/}}
{{- define "model-exporter.gatewayNamespaces" -}}
{{- $namespaces := .Values.gatewayAPI.dataPlaneNamespaces -}}
{{- if not $namespaces -}}
{{- range .Values.gatewayAPI.parentRefs -}}
{{- $namespaces = append $namespaces (.namespace | default $.Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- toJson ($namespaces | uniq) -}}
{{- end -}}

{{/*
The path feedback is posted to under an Ingress's path prefix.
*/}}
{{- define "model-exporter.feedbackPath" -}}
{{- printf "%s/feedback" (.Values.ingressNginx.path | trimSuffix "/") -}}
{{- end -}}

{{/*
Where the exporters mount the feedback dataset's volume when no URL is set; empty otherwise.
*/}}
{{- define "model-exporter.feedbackDataset.mountPath" -}}
{{- if and .Values.feedbackDataset.enabled (not .Values.feedbackDataset.url) -}}
/var/lib/modelmon/feedback
{{- end -}}
{{- end -}}

{{/*
The claim that holds the feedback dataset, or empty for an emptyDir (or no volume at all).
*/}}
{{- define "model-exporter.feedbackDataset.claimName" -}}
{{- $persistence := .Values.feedbackDataset.persistence -}}
{{- if and (include "model-exporter.feedbackDataset.mountPath" .) $persistence.enabled -}}
{{- $persistence.existingClaim | default (printf "%s-feedback" (include "model-exporter.fullname" .)) -}}
{{- end -}}
{{- end -}}
