#!/usr/bin/env bash
# Promote a user's canary step by step, 10 → 50 → 100 % of the prediction traffic. Before each
# raise it soaks, then gates on the user's alerts (`modelmon-ops status`) and on the A/B test of
# the canary against stable (`modelmon-ops ab-test`), both read from the shared Prometheus
# through a port-forward.
#
#   gate verdict                                   what happens
#   status 0 and ab-test 0 (not worse)             the weight goes up to the next step
#   status 1 (an alert fires) or ab-test 1 (worse) roll back to canary weight 0, exit 1
#   ab-test 3 (too few samples) or an error (2,    ask again after GATE_RETRY_WAIT, at most
#   a port-forward that does not come up)          GATE_RETRIES more times; then exit 3 and
#                                                  leave the weight where it is (fail safe)
#
# Called by .github/workflows/cd-deploy.yaml; by hand, with a KUBECONFIG and from the
# repository's root:
#   USER_ID=user07 IMAGE_REPOSITORY=ghcr.io/acme/modelmon-exporter IMAGE_TAG=0123abc \
#     .ci/promote-canary.sh
# Settings (environment): USER_ID (required); RELEASE (USER_ID); NAMESPACE (kubeflow-USER_ID);
# CHART (charts/model-monitoring); VALUES_FILE (values/users/USER_ID.yaml); IMAGE_REPOSITORY,
# IMAGE_TAG, IMAGE_DIGEST, CANARY_MODEL_PATH (each optional: empty keeps the chart's value);
# SOAK_TIME (10m); GATE_RETRIES (3); GATE_RETRY_WAIT (5m); AB_WINDOW (30m); AB_MIN_SAMPLES (200);
# AB_ALPHA (0.05); HELM_TIMEOUT (10m); PROMETHEUS_NAMESPACE (monitoring); PROMETHEUS_SERVICE
# (monitoring-kube-prometheus-prometheus); PROMETHEUS_PORT (9090); ROUTER_SERVICE
# (RELEASE-model-exporter-router); ROUTER_PORT (18080, local); PORT_FORWARD_TIMEOUT (60, seconds).
# Exit: 0 promoted to 100; 1 rolled back to 0 (or a helm upgrade failed); 2 bad settings;
# 3 stopped at the current weight without a verdict.
set -euo pipefail

readonly PROMOTION_STEPS=(10 50 100)

log() { printf '[promote-canary %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "error: $*" >&2; exit 2; }

USER_ID=${USER_ID:-}
[[ $USER_ID =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && ${#USER_ID} -le 53 ]] \
    || die "USER_ID '$USER_ID' is not a user id like user07 (lower-case letters, digits, '-')"
RELEASE=${RELEASE:-$USER_ID}
NAMESPACE=${NAMESPACE:-kubeflow-$USER_ID}
CHART=${CHART:-charts/model-monitoring}
VALUES_FILE=${VALUES_FILE:-values/users/$USER_ID.yaml}
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-}
IMAGE_TAG=${IMAGE_TAG:-}
IMAGE_DIGEST=${IMAGE_DIGEST:-}
CANARY_MODEL_PATH=${CANARY_MODEL_PATH:-}
SOAK_TIME=${SOAK_TIME:-10m}
GATE_RETRIES=${GATE_RETRIES:-3}
GATE_RETRY_WAIT=${GATE_RETRY_WAIT:-5m}
AB_WINDOW=${AB_WINDOW:-30m}
AB_MIN_SAMPLES=${AB_MIN_SAMPLES:-200}
AB_ALPHA=${AB_ALPHA:-0.05}
HELM_TIMEOUT=${HELM_TIMEOUT:-10m}
PROMETHEUS_NAMESPACE=${PROMETHEUS_NAMESPACE:-monitoring}
PROMETHEUS_SERVICE=${PROMETHEUS_SERVICE:-monitoring-kube-prometheus-prometheus}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ROUTER_SERVICE=${ROUTER_SERVICE:-$RELEASE-model-exporter-router}
ROUTER_PORT=${ROUTER_PORT:-18080}
PORT_FORWARD_TIMEOUT=${PORT_FORWARD_TIMEOUT:-60}

duration='^[0-9]+[smh]?$'
[[ $SOAK_TIME =~ $duration ]] || die "SOAK_TIME '$SOAK_TIME' is not a duration like 10m"
[[ $GATE_RETRY_WAIT =~ $duration ]] || die "GATE_RETRY_WAIT '$GATE_RETRY_WAIT' is not a duration"
[[ $GATE_RETRIES =~ ^[0-9]+$ ]] || die "GATE_RETRIES '$GATE_RETRIES' is not a whole number"
[[ $PORT_FORWARD_TIMEOUT =~ ^[0-9]+$ ]] || die "PORT_FORWARD_TIMEOUT is not a whole number"
[[ -f $VALUES_FILE ]] || die "no values file $VALUES_FILE for $USER_ID"
[[ -d $CHART ]] || die "no chart at $CHART (run from the repository's root)"
for tool in helm kubectl modelmon-ops curl; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH"
done

# What every helm upgrade sets besides the weight: the image under test and the canary's model.
RELEASE_ARGS=(--values "$VALUES_FILE" --set model-exporter.canary.enabled=true)
if [[ -n $IMAGE_REPOSITORY ]]; then
    RELEASE_ARGS+=(--set-string "model-exporter.image.repository=$IMAGE_REPOSITORY")
fi
if [[ -n $IMAGE_TAG ]]; then
    RELEASE_ARGS+=(--set-string "model-exporter.image.tag=$IMAGE_TAG")
fi
if [[ -n $IMAGE_DIGEST ]]; then
    RELEASE_ARGS+=(--set-string "model-exporter.image.digest=$IMAGE_DIGEST")
fi
if [[ -n $CANARY_MODEL_PATH ]]; then
    RELEASE_ARGS+=(--set-string "model-exporter.canary.modelPath=$CANARY_MODEL_PATH")
fi
OPS_ARGS=(
    --prometheus-url "http://127.0.0.1:$PROMETHEUS_PORT"
    --user "$USER_ID"
    --namespace "$NAMESPACE"
    --url "http://127.0.0.1:$ROUTER_PORT"
)

WORKDIR=$(mktemp -d)
PORT_FORWARDS=()

stop_port_forwards() {
    local pid
    for pid in "${PORT_FORWARDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PORT_FORWARDS=()
}

cleanup() {
    stop_port_forwards
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

# set_weight WEIGHT: one helm upgrade; a failed upgrade rolls back to the previous release.
set_weight() {
    local weight=$1
    log "helm upgrade $RELEASE in $NAMESPACE: canary weight $weight %"
    helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --create-namespace \
        "${RELEASE_ARGS[@]}" --set "model-exporter.canary.weight=$weight" \
        --wait --rollback-on-failure --timeout "$HELM_TIMEOUT"
    log "canary weight is now $weight %"
}

# port_forward NAME NAMESPACE SERVICE LOCAL:REMOTE READY_URL: start one port-forward in the
# background and wait until READY_URL answers; returns 1 when it does not within the timeout.
port_forward() {
    local name=$1 namespace=$2 service=$3 ports=$4 url=$5
    log "port-forward $namespace/svc/$service $ports"
    kubectl --namespace "$namespace" port-forward "svc/$service" "$ports" \
        >"$WORKDIR/port-forward-$name.log" 2>&1 &
    PORT_FORWARDS+=("$!")
    local deadline=$((SECONDS + PORT_FORWARD_TIMEOUT))
    until curl --silent --fail --output /dev/null --max-time 2 "$url"; do
        if ((SECONDS >= deadline)); then
            log "$url did not answer within ${PORT_FORWARD_TIMEOUT}s; port-forward said:"
            cat "$WORKDIR/port-forward-$name.log" || true
            return 1
        fi
        sleep 1
    done
}

# check: one round of both gates; sets VERDICT to pass, worse or undecided.
check() {
    VERDICT=undecided
    if ! port_forward prometheus "$PROMETHEUS_NAMESPACE" "$PROMETHEUS_SERVICE" \
        "$PROMETHEUS_PORT:9090" "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"; then
        return 0
    fi
    if ! port_forward router "$NAMESPACE" "$ROUTER_SERVICE" "$ROUTER_PORT:8080" \
        "http://127.0.0.1:$ROUTER_PORT/healthz"; then
        return 0
    fi
    local rc=0
    log "gate 1/2: modelmon-ops status (alerts of $USER_ID)"
    modelmon-ops status "${OPS_ARGS[@]}" || rc=$?
    case $rc in
        0) log "no alert of $USER_ID is firing" ;;
        1) log "an alert of $USER_ID is firing"; VERDICT=worse; return 0 ;;
        *) log "modelmon-ops status failed (exit $rc)"; return 0 ;;
    esac
    rc=0
    log "gate 2/2: modelmon-ops ab-test over $AB_WINDOW"
    modelmon-ops ab-test "${OPS_ARGS[@]}" --window "$AB_WINDOW" \
        --min-samples "$AB_MIN_SAMPLES" --alpha "$AB_ALPHA" || rc=$?
    case $rc in
        0) log "the canary is not worse than stable"; VERDICT=pass ;;
        1) log "the canary is significantly worse than stable"; VERDICT=worse ;;
        3) log "too few samples for a verdict yet" ;;
        *) log "modelmon-ops ab-test failed (exit $rc)" ;;
    esac
}

# gate WEIGHT: soak, then check until a verdict; rolls back or stops the script when not pass.
gate() {
    local weight=$1 attempt
    log "soaking $SOAK_TIME at canary weight $weight %"
    sleep "$SOAK_TIME"
    for ((attempt = 1; attempt <= GATE_RETRIES + 1; attempt++)); do
        log "gate at weight $weight %, attempt $attempt of $((GATE_RETRIES + 1))"
        check
        stop_port_forwards
        case $VERDICT in
            pass)
                return 0
                ;;
            worse)
                log "rolling back: canary weight 0 %"
                set_weight 0
                log "rolled back; the canary gets no traffic"
                exit 1
                ;;
        esac
        if ((attempt <= GATE_RETRIES)); then
            log "no verdict; asking again in $GATE_RETRY_WAIT"
            sleep "$GATE_RETRY_WAIT"
        fi
    done
    log "no verdict after $((GATE_RETRIES + 1)) attempts: stopping at canary weight $weight % (fail safe)"
    exit 3
}

log "promoting the canary of $RELEASE in $NAMESPACE through ${PROMOTION_STEPS[*]} %"
current=${PROMOTION_STEPS[0]}
set_weight "$current"
for next in "${PROMOTION_STEPS[@]:1}"; do
    gate "$current"
    set_weight "$next"
    current=$next
done
log "promoted: the canary takes $current % of the traffic"
