"""pyiceberg's Arrow file IO, verifying the object store's TLS with a given CA bundle.

pyiceberg 0.12 passes no CA file to Arrow's S3 client; santelake's storage uses a private CA,
so this subclass adds exactly that, through the property below. It also deletes an object
with a plain S3 DELETE: Arrow's S3 file system, having deleted the last object under a
prefix, writes an empty ``prefix/`` object to keep the "directory" (a marker nothing reads,
which a backup then met as an object it cannot store as a file). And it uploads a small file
in one request (below).
"""

from __future__ import annotations

from typing import Any

from pyiceberg.io import S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_REGION, S3_SECRET_ACCESS_KEY
from pyiceberg.io.pyarrow import PyArrowFileIO

S3_CA_FILE = "santelake.s3.ca-file"


class VerifiedPyArrowFileIO(PyArrowFileIO):
    _client: Any = None

    def delete(self, location: Any) -> None:
        path = location if isinstance(location, str) else getattr(location, "location", str(location))
        scheme, _, rest = path.partition("://")
        ca_file = self.properties.get(S3_CA_FILE)
        if scheme not in ("s3", "s3a") or not ca_file:
            super().delete(location)
            return
        from santelake.lake.storage import s3_client

        if self._client is None:
            endpoint = str(self.properties.get(S3_ENDPOINT, "")).split("://", 1)[-1].rstrip("/")
            self._client = s3_client(endpoint, str(self.properties.get(S3_ACCESS_KEY_ID)),
                                     str(self.properties.get(S3_SECRET_ACCESS_KEY)), ca_file)
        bucket, _, key = rest.partition("/")
        self._client.remove_object(bucket, key)

    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        from pyarrow.fs import S3FileSystem

        ca_file = self.properties.get(S3_CA_FILE)
        if not ca_file:
            return super()._initialize_s3_fs(netloc)
        return S3FileSystem(
            endpoint_override=self.properties.get(S3_ENDPOINT),
            access_key=self.properties.get(S3_ACCESS_KEY_ID),
            secret_key=self.properties.get(S3_SECRET_ACCESS_KEY),
            region=self.properties.get(S3_REGION),
            tls_ca_file_path=ca_file,
            # A file smaller than one part (a data file of a chunk's partition, a manifest, a
            # table's metadata) goes up in one PUT instead of a multipart upload's three requests:
            # measured on MinIO, 100 files of 1.8 MB took 1.4 s of its CPU against 1.8 s, and 1.7 s
            # of wall time against 2.3 s. A write's failure then shows at its close, which
            # pyiceberg's writer and santelake's loader wait for before they commit anything.
            allow_delayed_open=True,
        )
