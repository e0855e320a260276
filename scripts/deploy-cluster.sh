#!/usr/bin/env bash
# Deploy the site on a Kubernetes cluster from deploy/kubernetes (kustomize), or remove it.
#
#   scripts/deploy-cluster.sh                       build the image, deploy into namespace `tutorial`
#   scripts/deploy-cluster.sh --namespace class-2   a second install beside it (own namespaces,
#                                                   own ClusterRole, own install id)
#   scripts/deploy-cluster.sh --image REF           deploy an image already pushed
#   scripts/deploy-cluster.sh --namespace X --delete
#
# The cluster is KUBECONFIG (default: this machine's local cluster, data/cluster/admin.kubeconfig).
# Learners' plain sandboxes go to the namespace "<namespace>-sandboxes", Kubernetes lessons'
# toolbox pods to "<namespace>-tools". The Secret
# `tutorial-secrets` (Django's key, PostgreSQL's password) is made once, never overwritten or
# printed. The overlay that sets all this is written under data/deploy/<namespace>/ and kept,
# so `kubectl apply -k data/deploy/<namespace>` re-applies the same thing.
set -euo pipefail
cd "$(dirname "$0")/.."
NAMESPACE=tutorial
IMAGE=""
DELETE=0
TIMEOUT="${TUTORIAL_DEPLOY_TIMEOUT:-300s}"
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) NAMESPACE="$2"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --delete) DELETE=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "deploy-cluster: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$ ]]; then
  echo "deploy-cluster: --namespace $NAMESPACE: use 1-42 of a-z, 0-9 and '-' (a DNS label with room for '-sandboxes')" >&2
  exit 2
fi
if [ -z "${KUBECONFIG:-}" ] && [ -f data/cluster/admin.kubeconfig ]; then
  export KUBECONFIG="$PWD/data/cluster/admin.kubeconfig"
fi
# kubectl: $KUBECTL, else on PATH, else the one the local cluster built (cluster/build.py).
KUBECTL="${KUBECTL:-$(command -v kubectl || true)}"
if [ -z "$KUBECTL" ]; then
  KUBECTL=$(python3 -c 'from cluster.layout import Layout; print(Layout.from_environment().program("kubectl"))' 2>/dev/null || true)
fi
[ -n "$KUBECTL" ] && [ -x "$KUBECTL" ] || { echo "deploy-cluster: kubectl is needed (on PATH, or make cluster builds one)" >&2; exit 1; }
kubectl() { "$KUBECTL" "$@"; }
k() { "$KUBECTL" --request-timeout=30s "$@"; }
k version >/dev/null 2>&1 || { echo "deploy-cluster: no cluster answers (KUBECONFIG=${KUBECONFIG:-unset}; make cluster)" >&2; exit 1; }

SANDBOXES="$NAMESPACE-sandboxes"
TOOLS="$NAMESPACE-tools"
OVERLAY="data/deploy/$NAMESPACE"
BASE=../../../../deploy/kubernetes  # from $OVERLAY/site and $OVERLAY/sandboxes
# The default install keeps the base's cluster-wide names; another one gets its own.
SUFFIX=""
[ "$NAMESPACE" = tutorial ] || SUFFIX="-$NAMESPACE"

write_overlay() {
  local image_name="${1%:*}" image_tag="${1##*:}"
  mkdir -p "$OVERLAY/site" "$OVERLAY/sandboxes"
  printf 'namespace: %s\nresources: [%s/site]\n' "$NAMESPACE" "$BASE" > "$OVERLAY/site/kustomization.yaml"
  # The sandboxes folder holds two Namespace objects: each is renamed on its own (a kustomize
  # `namespace:` would give both the same name).
  cat > "$OVERLAY/sandboxes/kustomization.yaml" <<EOF
resources: [$BASE/sandboxes]
patches:
  - target: {kind: Namespace, name: tutorial-sandboxes}
    patch: |-
      - {op: replace, path: /metadata/name, value: $SANDBOXES}
  - target: {kind: Namespace, name: tutorial-tools}
    patch: |-
      - {op: replace, path: /metadata/name, value: $TOOLS}
EOF
  cat > "$OVERLAY/kustomization.yaml" <<EOF
# Written by scripts/deploy-cluster.sh for the install in namespace $NAMESPACE.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [site, sandboxes]
images:
  - {name: tutorial-site, newName: $image_name, newTag: "$image_tag"}
patches:
  - target: {kind: ConfigMap, name: tutorial-env}
    patch: |-
      - {op: replace, path: /data/TUTORIAL_SANDBOX_NAMESPACE, value: $SANDBOXES}
      - {op: replace, path: /data/TUTORIAL_TOOLS_NAMESPACE, value: $TOOLS}
      - {op: replace, path: /data/TUTORIAL_INSTALL_ID, value: $NAMESPACE}
      - {op: replace, path: /data/DJANGO_ALLOWED_HOSTS, value: "site,site.$NAMESPACE.svc,site.$NAMESPACE.svc.cluster.local,localhost"}
  - target: {kind: ClusterRole, name: tutorial-site}
    patch: |-
      - {op: replace, path: /metadata/name, value: tutorial-site$SUFFIX}
  - target: {kind: ClusterRoleBinding, name: tutorial-site}
    patch: |-
      - {op: replace, path: /metadata/name, value: tutorial-site$SUFFIX}
      - {op: replace, path: /roleRef/name, value: tutorial-site$SUFFIX}
      - {op: replace, path: /subjects/0/namespace, value: $NAMESPACE}
EOF
}

if [ "$DELETE" = 1 ]; then
  # Sandboxes first (their pods and namespaces carry this install's label), then the install.
  k delete "clusterrolebinding/tutorial-site$SUFFIX" "clusterrole/tutorial-site$SUFFIX" --ignore-not-found >/dev/null
  k delete namespace -l "tutorial.install=$NAMESPACE" --wait=false --ignore-not-found >/dev/null || true
  # The install's NetworkPolicies wherever they are (a tools or sandboxes namespace may be shared
  # with another install and outlive this one), once the pods they guard are gone: a sandbox or
  # toolbox pod must never run without its policy.
  kubectl delete pods --all-namespaces -l "tutorial.install=$NAMESPACE,tutorial.sandbox" --ignore-not-found \
    --wait=true --timeout=90s >/dev/null || true
  k delete networkpolicies --all-namespaces -l "tutorial.install=$NAMESPACE" --ignore-not-found >/dev/null
  k delete namespace "$SANDBOXES" "$TOOLS" "$NAMESPACE" --wait=false --ignore-not-found >/dev/null
  rm -rf "$OVERLAY"
  echo "deploy-cluster: $NAMESPACE, $SANDBOXES and $TOOLS are being deleted"
  exit 0
fi

if [ -z "$IMAGE" ]; then
  IMAGE=$(./scripts/build-site-image.sh | tail -1)
fi
write_overlay "$IMAGE"
k create namespace "$NAMESPACE" --dry-run=client -o yaml | k apply -f - >/dev/null
if ! k -n "$NAMESPACE" get secret tutorial-secrets >/dev/null 2>&1; then
  # Hex: safe inside DATABASE_URL without quoting.
  k -n "$NAMESPACE" create secret generic tutorial-secrets \
    --from-literal=DJANGO_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    --from-literal=POSTGRES_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(24))')" >/dev/null
fi
k apply -k "$OVERLAY" >/dev/null
for deployment in postgres redis registry site reaper; do
  if ! kubectl -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout="$TIMEOUT" >/dev/null; then
    echo "deploy-cluster: deployment/$deployment is not ready after $TIMEOUT:" >&2
    k -n "$NAMESPACE" get pods -o wide >&2 || true
    k -n "$NAMESPACE" logs "deployment/$deployment" --all-containers --tail=30 >&2 || true
    exit 1
  fi
done
echo "deploy-cluster: $IMAGE serves in namespace $NAMESPACE (service/site, port 80); sandboxes in $SANDBOXES, toolboxes in $TOOLS"
