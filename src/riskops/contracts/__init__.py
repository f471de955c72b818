"""Data contracts: a landed file is checked against its model spec before anything uses it."""

from riskops.contracts.check import check_file, check_frame
from riskops.contracts.violations import ContractResult, Violation

__all__ = ["ContractResult", "Violation", "check_file", "check_frame"]
