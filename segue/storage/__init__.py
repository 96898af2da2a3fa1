"""Object stores for finished videos and last frames (local folder or S3)."""

from segue.storage.base import ObjectStore, open_store
from segue.storage.local import LocalStore

__all__ = ["LocalStore", "ObjectStore", "open_store"]
