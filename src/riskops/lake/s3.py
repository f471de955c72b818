"""The lake on S3 (or any S3 API: moto, MinIO), through a boto3 client handed in."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from riskops.lake.base import Lake, LakeError, ObjectInfo


class S3Lake(Lake):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def __repr__(self) -> str:
        return f"S3Lake(s3://{self.bucket}/{self.prefix})"

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _rel(self, full_key: str) -> str:
        return full_key[len(self.prefix) :] if full_key.startswith(self.prefix) else full_key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def key_of(self, uri: str) -> str:
        head = f"s3://{self.bucket}/{self.prefix}"
        if not uri.startswith(head):
            raise LakeError(f"{uri} is not inside the S3 lake {head}")
        return uri[len(head) :]

    def key_of_object(self, full_key: str) -> str | None:
        """Lake key of a bucket object key, or None when it is outside the prefix."""
        return self._rel(full_key) if full_key.startswith(self.prefix) else None

    def _call(self, what: str, key: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise LakeError(f"S3 {what} of {self.uri(key)} failed: {error}") from error

    def put_file(self, key: str, path: Path) -> str:
        try:
            self.client.upload_file(str(path), self.bucket, self._full(key))
        except (ClientError, BotoCoreError) as error:
            raise LakeError(f"S3 upload of {path} to {self.uri(key)} failed: {error}") from error
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        self._call("put", key, self.client.put_object, Key=self._full(key), Body=data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        response = self._call("get", key, self.client.get_object, Key=self._full(key))
        return response["Body"].read()

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="riskops-s3-") as tmp:
            path = Path(tmp) / Path(key).name
            try:
                self.client.download_file(self.bucket, self._full(key), str(path))
            except (ClientError, BotoCoreError) as error:
                raise LakeError(f"S3 download of {self.uri(key)} failed: {error}") from error
            yield path

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise LakeError(f"S3 head of {self.uri(key)} failed: {error}") from error
        return True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
                for item in page.get("Contents", []):
                    key = self._rel(item["Key"])
                    if any(part.startswith(".") for part in key.split("/")):
                        continue
                    yield ObjectInfo(key, item["Size"], item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as error:
            raise LakeError(f"S3 list of {self.uri(prefix)} failed: {error}") from error

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Key=self._full(key))

    def move(self, src: str, dst: str) -> str:
        source = {"Bucket": self.bucket, "Key": self._full(src)}
        self._call("copy", dst, self.client.copy_object, Key=self._full(dst), CopySource=source)
        self.delete(src)
        return self.uri(dst)
