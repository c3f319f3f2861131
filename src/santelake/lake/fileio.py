"""pyiceberg's Arrow file IO, verifying the object store's TLS with a given CA bundle.

pyiceberg 0.12 passes no CA file to Arrow's S3 client; santelake's storage uses a private CA,
so this subclass adds exactly that, through the property below, and nothing else.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.io import S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_REGION, S3_SECRET_ACCESS_KEY
from pyiceberg.io.pyarrow import PyArrowFileIO

S3_CA_FILE = "santelake.s3.ca-file"


class VerifiedPyArrowFileIO(PyArrowFileIO):
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
        )
