"""A single-node Kubernetes cluster of host processes, for the kubernetes workspace on one machine.

Built from Go modules (never committed source), started and stopped by ``python -m cluster``.
A leaf package: it imports nothing of the site, so the site, the scripts and the tests can all
use it. See docs/kubernetes.md.
"""
