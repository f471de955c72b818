"""The lake: landing zone, quarantine and dataset store, on a local directory or S3."""

from riskops.lake.base import Lake, LakeError, ObjectInfo, landing_key, split_landing_key
from riskops.lake.local import LocalLake
from riskops.lake.s3 import S3Lake

__all__ = [
    "Lake",
    "LakeError",
    "LocalLake",
    "ObjectInfo",
    "S3Lake",
    "landing_key",
    "split_landing_key",
]
