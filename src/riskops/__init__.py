"""riskops: keep credit, fraud and transaction-risk models correct, fast and auditable."""

__version__ = "0.1.0"
