#!/usr/bin/env bash
# Bring up this machine's local Kubernetes cluster (cluster/, `python -m cluster up`) unless the
# site is configured to use another cluster (TUTORIAL_KUBECONFIG, $KUBECONFIG, ~/.kube/config) or
# TUTORIAL_LOCAL_CLUSTER=0. The first time it builds the programs from Go modules (about twenty
# minutes on two cores); later it starts in seconds.
#   scripts/local-cluster.sh               in the foreground; fails when the cluster cannot start
#   scripts/local-cluster.sh --background  returns at once; progress in data/cluster/up.log, and
#                                          on the Kubernetes lesson pages
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if ! "$PY" -c 'import sys; from sandbox.local_cluster import uses_local_cluster; sys.exit(0 if uses_local_cluster() else 1)'; then
  echo "local cluster: not used (a kubeconfig is configured, or TUTORIAL_LOCAL_CLUSTER=0)"
  exit 0
fi
# The toolbox image carries the cluster's own kubectl, built with it.
# Pushed with the lesson images, so toolbox pods (TUTORIAL_KUBERNETES_TOOLBOX=pod) can be pulled.
up() { "$PY" -m cluster up && "$PY" manage.py build_images toolbox && "$PY" manage.py seed_registry; }
if [ "${1:-}" = "--background" ]; then
  mkdir -p data/cluster
  (up >>data/cluster/up.log 2>&1 &)
  echo "local cluster: starting in the background (log: data/cluster/up.log; status: $PY -m cluster status)"
else
  up
fi
