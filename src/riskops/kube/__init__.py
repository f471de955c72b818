"""Kubernetes artefacts: the work pool's base job template, flow-run Job rendering, checks."""
