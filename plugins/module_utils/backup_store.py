# Private to the caretaker.ops collection: the engine's API may change without notice.
"""Where backups live: an S3 bucket (or S3-compatible store) or a local directory.

Both stores write a backup's bytes so that they appear whole or not at all: S3 through a
multipart upload that only CompleteMultipartUpload makes visible, a directory through a
temporary name that is fsynced and renamed. Small objects (manifests, drill results) are
written the same way. What a killed run leaves behind (an open multipart upload, a
.partial file) is listed by incomplete() and removed by the next run.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import queue
import threading

from .errors import CaretakerError, ConfigError, TransientError

MIB = 1024 * 1024
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys

STORE_SPEC = {
    "destination": {"type": "str", "choices": ["local", "s3"], "default": "local"},
    "directory": {"type": "path", "default": "/var/backups/caretaker"},
    "prefix": {"type": "str", "default": ""},
    "bucket": {"type": "str"},
    "endpoint_url": {"type": "str"},
    "region": {"type": "str"},
    "storage_class": {"type": "str"},
    "sse": {"type": "str", "choices": ["AES256", "aws:kms", "aws:kms:dsse"]},
    "sse_kms_key_id": {"type": "str"},
    "access_key": {"type": "str", "no_log": True},
    "secret_key": {"type": "str", "no_log": True},
    "session_token": {"type": "str", "no_log": True},
    "addressing_style": {"type": "str", "choices": ["auto", "path", "virtual"], "default": "auto"},
    "part_size_mb": {"type": "int", "default": 16},
    "max_attempts": {"type": "int", "default": 5},
    "read_timeout": {"type": "float", "default": 60.0},
}


def normalise_prefix(prefix: str) -> str:
    prefix = (prefix or "").strip("/")
    return prefix + "/" if prefix else ""


def open_store(args: dict):
    """The store the arguments name; nothing is contacted yet (see check())."""
    prefix = normalise_prefix(args["prefix"])
    if args["destination"] == "s3":
        if not args.get("bucket"):
            raise ConfigError("is required when destination is s3", field="bucket")
        if not 5 <= args["part_size_mb"] <= 5120:
            raise ConfigError(f"must be between 5 and 5120 (S3's part size limits), got {args['part_size_mb']}", field="part_size_mb")
        return S3Store(args, prefix)
    return LocalStore(args["directory"], prefix)


def _utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC)


# ---------------------------------------------------------------------------- local


class LocalStore:
    kind = "local"

    def __init__(self, directory: str, prefix: str):
        self.root = directory
        self.prefix = prefix
        self.requests = 0

    def describe(self, key=""):
        return os.path.join(self.root, key)

    def check(self, create: bool):
        if os.path.isdir(self.root):
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise ConfigError(f"{self.root} is not writable", field="directory")
            return
        if os.path.exists(self.root):
            raise ConfigError(f"{self.root} exists and is not a directory", field="directory")
        if create:
            os.makedirs(self.root, mode=0o700, exist_ok=True)

    def _path(self, key):
        return os.path.join(self.root, key)

    def open_writer(self, key):
        return _LocalWriter(self._path(key))

    def put_small(self, key, data: bytes):
        writer = self.open_writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def get_small(self, key) -> bytes:
        try:
            with open(self._path(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise CaretakerError(f"{self._path(key)} does not exist") from None

    def open_reader(self, key):
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise CaretakerError(f"{self._path(key)} does not exist") from None

    def list(self, prefix):
        """(key, size, modified) of every object under prefix (a directory here)."""
        directory = self._path(prefix)
        found = []
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            if entry.is_file() and not entry.name.startswith("."):
                stat = entry.stat()
                found.append((prefix + entry.name, stat.st_size, _utc(stat.st_mtime)))
        return found

    def delete(self, keys):
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))
            self.requests += 1

    def incomplete(self, prefix):
        """Partial files a killed run left: (key, handle, started)."""
        directory = self._path(prefix)
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        return [
            (prefix + entry.name, entry.path, _utc(entry.stat().st_mtime))
            for entry in entries
            if entry.name.startswith(".") and entry.name.endswith(".partial")
        ]

    def abort_incomplete(self, items):
        for _key, path, _started in items:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class _LocalWriter:
    def __init__(self, path):
        self.path = path
        directory, name = os.path.split(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.partial = os.path.join(directory, f".{name}.partial")
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def write(self, data):
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def commit(self):
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        os.rename(self.partial, self.path)
        directory_fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)

    def abort(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial)


# ---------------------------------------------------------------------------- S3


def _boto_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _s3_error(exc, what):
    """A boto error -> TransientError (network, 5xx, throttling) or CaretakerError."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"{what}: {code or status} {exc.response.get('Error', {}).get('Message', '')}".strip()
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling"):
            return TransientError(message)
        return CaretakerError(message)
    return TransientError(f"{what}: {exc}")


class S3Store:
    kind = "s3"

    def __init__(self, args, prefix):
        self.args = args
        self.bucket = args["bucket"]
        self.prefix = prefix
        self.part_size = args["part_size_mb"] * MIB
        self.requests = 0
        self._client = None

    def describe(self, key=""):
        return f"s3://{self.bucket}/{key}"

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            args = self.args
            session = boto3.session.Session(
                aws_access_key_id=args.get("access_key"),
                aws_secret_access_key=args.get("secret_key"),
                aws_session_token=args.get("session_token"),
                region_name=args.get("region"),
            )
            config = Config(
                retries={"max_attempts": args["max_attempts"], "mode": "standard"},
                connect_timeout=10,
                read_timeout=args["read_timeout"],
                s3={"addressing_style": args["addressing_style"]},
            )
            self._client = session.client("s3", endpoint_url=args.get("endpoint_url"), config=config)
            self._client.meta.events.register("before-send.s3", self._count)
        return self._client

    def _count(self, **_):
        self.requests += 1

    def check(self, create: bool):
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise ConfigError("no S3 credentials: set access_key/secret_key or configure the boto3 credential chain", field="access_key") from None
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status == 404:
                raise ConfigError(f"bucket {self.bucket!r} does not exist", field="bucket") from None
            if status == 403:
                raise ConfigError(f"access to bucket {self.bucket!r} denied: check the credentials", field="access_key") from None
            raise _s3_error(exc, f"cannot reach bucket {self.bucket!r}") from None
        except (BotoCoreError, ValueError) as exc:
            raise TransientError(f"cannot reach the S3 endpoint {self.args.get('endpoint_url') or 'of AWS'}: {exc}") from None

    def _extra(self):
        extra = {}
        if self.args.get("storage_class"):
            extra["StorageClass"] = self.args["storage_class"]
        if self.args.get("sse"):
            extra["ServerSideEncryption"] = self.args["sse"]
        if self.args.get("sse_kms_key_id"):
            extra["SSEKMSKeyId"] = self.args["sse_kms_key_id"]
        return extra

    def open_writer(self, key):
        return _MultipartWriter(self, key)

    def put_small(self, key, data: bytes):
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", **self._extra())
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot write {self.describe(key)}") from None

    def get_small(self, key) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot read {self.describe(key)}") from None

    def open_reader(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot read {self.describe(key)}") from None

    def list(self, prefix):
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for item in page.get("Contents", []):
                    found.append((item["Key"], item["Size"], item["LastModified"]))
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot list {self.describe(prefix)}") from None
        return found

    def delete(self, keys):
        keys = list(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
            except _boto_errors() as exc:
                raise _s3_error(exc, f"cannot remove keys in {self.describe()}") from None
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise CaretakerError(f"S3 refused to delete {len(answer['Errors'])} keys, first {first.get('Key')}: {first.get('Code')} {first.get('Message')}")

    def incomplete(self, prefix):
        found = []
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    found.append((upload["Key"], upload["UploadId"], upload["Initiated"]))
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot list incomplete uploads in {self.describe(prefix)}") from None
        return found

    def abort_incomplete(self, items):
        for key, upload_id, _started in items:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except _boto_errors() as exc:
                raise _s3_error(exc, f"cannot abort the incomplete upload of {self.describe(key)}") from None


class _MultipartWriter:
    """Cuts the stream into parts of exactly part_size bytes (the last may be shorter) and
    uploads them from a thread, one part in flight, so memory stays near two parts."""

    def __init__(self, store, key):
        self.store = store
        self.key = key
        self.client = store.client
        self.buffer = bytearray()
        self.parts = []
        self.sent = 0
        self.error = None
        try:
            answer = self.client.create_multipart_upload(Bucket=store.bucket, Key=key, ContentType="application/octet-stream", **store._extra())
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot start the upload of {store.describe(key)}") from None
        self.upload_id = answer["UploadId"]
        self.queue = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._upload_parts, name="s3-parts", daemon=True)
        self.thread.start()

    def _upload_parts(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            number, data = item
            if self.error is not None:
                continue
            try:
                answer = self.client.upload_part(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data)
                self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            except Exception as exc:  # noqa: BLE001 - any failure is reported to the writer thread on its next call
                self.error = _s3_error(exc, f"cannot upload part {number} of {self.store.describe(self.key)}")

    def _raise_if_failed(self):
        if self.error is not None:
            raise self.error

    def _send(self, data):
        self._raise_if_failed()
        if self.sent >= 10000:
            raise CaretakerError("the backup needs more than 10,000 parts: raise part_size_mb")
        self.sent += 1
        self.queue.put((self.sent, data))

    def write(self, data):
        self.buffer += data
        size = self.store.part_size
        while len(self.buffer) >= size:
            part = bytes(self.buffer[:size])
            del self.buffer[:size]
            self._send(part)

    def commit(self):
        if self.buffer or not self.sent:
            self._send(bytes(self.buffer))
            self.buffer = bytearray()
        self.queue.put(None)
        self.thread.join()
        self._raise_if_failed()
        parts = sorted(self.parts, key=lambda part: part["PartNumber"])
        try:
            self.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts})
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot complete the upload of {self.store.describe(self.key)}") from None

    def abort(self):
        self.error = self.error or CaretakerError("aborted")
        if self.thread.is_alive():
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            self.queue.put(None)
            self.thread.join()
        with contextlib.suppress(*_boto_errors()):  # the next run cleans what this could not
            self.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)
