"""The upload end of the plain pipe: stdin to one S3 object, or one S3 object to stdout.

What `aws s3 cp - s3://bucket/key` and `aws s3 cp s3://bucket/key -` do: the upload with
boto3's transfer manager (multipart, 8 MiB parts, 4 threads), the download one GET read in
order (the transfer manager's ranged download into a pipe can stall for good: its ordered
writer waits on a window that a multi-gigabyte object never frees), so the pipe baseline
needs no other tool:

    pg_dump -Fc -Z0 db | zstd -T2 | python bench/s3pipe.py put BUCKET KEY
    python bench/s3pipe.py get BUCKET KEY | zstd -dc | pg_restore -d db

The endpoint comes from S3PIPE_ENDPOINT, the keys from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, the CA file (https) from AWS_CA_BUNDLE.
"""

from __future__ import annotations

import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1024**2


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
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        out = sys.stdout.buffer
        for block in body.iter_chunks(MiB):
            out.write(block)
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
