"""The scoring service: online scoring, reason codes, shadow scoring and the decision log."""
