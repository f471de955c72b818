"""Monitoring: drift and performance checks, the retraining cooldown, alert messages."""
