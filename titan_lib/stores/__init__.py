"""Object stores chosen by URI: a local folder (default) or ``s3://bucket/prefix``.

Standard library only at import time; boto3 is imported when an S3 store is opened.
"""

from titan_lib.stores.objects import ObjectStore, open_store, read_json, write_json

__all__ = ["ObjectStore", "open_store", "read_json", "write_json"]
