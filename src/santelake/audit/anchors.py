"""Anchors of the chain's head, kept in the object store: outside the database that holds the records.

One object per anchor, named ``anchors/<seq>_<hash>_<time>`` so that listing the bucket is enough
to read them all. The bucket is made with object lock where the store supports it, and the
receiver's account may write but never delete: an anchor, once written, stays.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from santelake.audit.chain import Anchor

PREFIX = "anchors/"
_TIME = "%Y%m%dT%H%M%S.%fZ"


def anchor_key(anchor: Anchor) -> str:
    return f"{PREFIX}{anchor.seq:015d}_{anchor.hash}_{anchor.taken_at.astimezone(dt.UTC).strftime(_TIME)}"


def parse_key(key: str) -> Anchor | None:
    """The anchor a key names, or None for an object that is not one."""
    if not key.startswith(PREFIX):
        return None
    parts = key[len(PREFIX):].split("_")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64:
        return None
    try:
        taken = dt.datetime.strptime(parts[2], _TIME).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return Anchor(int(parts[0]), parts[1], taken)


class S3Anchors:
    """Anchors in ``bucket`` through a ``minio.Minio`` client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, anchor: Anchor) -> None:
        data = anchor.to_json().encode()
        self.client.put_object(self.bucket, anchor_key(anchor), io.BytesIO(data), len(data),
                               content_type="application/json")

    def __iter__(self) -> Iterator[Anchor]:
        for item in self.client.list_objects(self.bucket, prefix=PREFIX, recursive=True):
            anchor = parse_key(item.object_name)
            if anchor is not None:
                yield anchor
