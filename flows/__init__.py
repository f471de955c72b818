"""riskops flows."""
