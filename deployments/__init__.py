"""riskops deployments."""
