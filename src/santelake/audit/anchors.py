"""Anchors of the chain's head, kept in the object store: outside the database that holds the records.

One object per anchor, named ``anchors/<trail>/<seq>_<hash>_<time>`` (``<trail>``: the trail's
database), so that listing is enough to read them all and two trails never mix their anchors.
The bucket is made with object lock and a default retention in compliance mode, and the
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


def anchor_key(anchor: Anchor, trail: str) -> str:
    return (f"{PREFIX}{trail}/{anchor.seq:015d}_{anchor.hash}_"
            f"{anchor.taken_at.astimezone(dt.UTC).strftime(_TIME)}")


def parse_key(key: str, trail: str) -> Anchor | None:
    """The anchor of ``trail`` a key names, or None for an object that is not one."""
    prefix = f"{PREFIX}{trail}/"
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix):].split("_")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64:
        return None
    try:
        taken = dt.datetime.strptime(parts[2], _TIME).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return Anchor(int(parts[0]), parts[1], taken)


class S3Anchors:
    """Anchors in ``bucket`` through a ``minio.Minio`` client."""

    def __init__(self, client: Any, bucket: str, trail: str) -> None:
        self.client = client
        self.bucket = bucket
        self.trail = trail

    def put(self, anchor: Anchor) -> None:
        data = anchor.to_json().encode()
        self.client.put_object(self.bucket, anchor_key(anchor, self.trail), io.BytesIO(data), len(data),
                               content_type="application/json")

    def __iter__(self) -> Iterator[Anchor]:
        """Every anchor ever written, versions included: a delete marker (which root may add) hides an
        object from a plain listing, but the locked version under it is still read here."""
        seen: set[str] = set()
        for item in self.client.list_objects(self.bucket, prefix=f"{PREFIX}{self.trail}/", recursive=True,
                                             include_version=True):
            if item.is_delete_marker or item.object_name in seen:
                continue
            seen.add(item.object_name)
            anchor = parse_key(item.object_name, self.trail)
            if anchor is not None:
                yield anchor
