"""Objects in an S3 bucket (or an S3-compatible service), handed out as presigned GET links.

boto3 is imported here only, so a one-machine install never needs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from segue.storage.local import check_key

# SigV4 presigned URLs cannot outlive 7 days.
MAX_PRESIGN_SECONDS = 7 * 86_400


def _client(endpoint_url: str | None) -> Any:
    # Custom endpoints (MinIO, moto, Ceph...) rarely do virtual-host buckets.
    style = "path" if endpoint_url else "auto"
    config = Config(signature_version="s3v4", s3={"addressing_style": style})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


class S3Store:
    """``bucket/prefix/<key>``; links are presigned so the bucket itself can stay private."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or _client(endpoint_url)
        # Links are signed for the address clients reach the store at, which inside a
        # container network is often not the one Segue itself uses (http://minio:9000).
        self._signer = _client(public_endpoint_url) if public_endpoint_url else self.client

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, source: Path, content_type: str) -> None:
        self.client.upload_file(
            str(source), self.bucket, self._name(key), ExtraArgs={"ContentType": content_type}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def download(self, key: str, dest: Path) -> None:
        self.client.download_file(self.bucket, self._name(key), str(dest))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def url(self, key: str, expires_at: int) -> str:
        seconds = min(max(1, int(expires_at) - int(time.time())), MAX_PRESIGN_SECONDS)
        return self._signer.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._name(key)},
            ExpiresIn=seconds,
        )
