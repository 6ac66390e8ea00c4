"""The upload end of the plain pipe: stdin to one S3 object, or one S3 object to stdout.

What `aws s3 cp - s3://bucket/key` and `aws s3 cp s3://bucket/key -` do: the upload with
boto3's transfer manager (multipart, 8 MiB parts, 4 threads), the download as 8 MiB ranged
GETs on 4 threads written in order (boto3's own download into a pipe stalled in a run
at 1 GB, its threads all waiting), so the pipe baseline needs no other tool:

    pg_dump -Fc -Z0 db | zstd -T2 | python bench/s3pipe.py put BUCKET KEY
    python bench/s3pipe.py get BUCKET KEY | zstd -dc | pg_restore -d db

The endpoint comes from S3PIPE_ENDPOINT, the keys from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, the CA file (https) from AWS_CA_BUNDLE.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1024**2
PART = 8 * MiB


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("put", "get"):
        print("usage: s3pipe.py put|get BUCKET KEY", file=sys.stderr)
        return 2
    verb, bucket, key = argv[1:]
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["S3PIPE_ENDPOINT"],
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    transfer = TransferConfig(multipart_chunksize=8 * MiB, max_concurrency=4)
    if verb == "put":
        client.upload_fileobj(sys.stdin.buffer, bucket, key, Config=transfer)
    else:
        _download(client, bucket, key, sys.stdout.buffer)
    return 0


def _download(client: Any, bucket: str, key: str, out: BinaryIO) -> None:
    """8 MiB ranges fetched by 4 threads, at most 8 ahead of the writer, written in order."""
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]

    def fetch(start: int) -> bytes:
        end = min(start + PART, size) - 1
        got = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
        data: bytes = got["Body"].read()
        return data

    starts = iter(range(0, size, PART))
    with ThreadPoolExecutor(max_workers=4) as pool:
        ahead = deque(pool.submit(fetch, s) for s in itertools.islice(starts, 8))
        while ahead:
            out.write(ahead.popleft().result())
            nxt = next(starts, None)
            if nxt is not None:
                ahead.append(pool.submit(fetch, nxt))
    out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
