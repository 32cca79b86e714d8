"""Where backups live: an S3 bucket (or S3-compatible store) or a local directory.

Both stores write a backup's bytes so that they appear whole or not at all: S3 through a
multipart upload that only CompleteMultipartUpload makes visible, a directory through a
temporary name that is fsynced and renamed. A small JSON document (the catalog) is
changed by update_json(): read, change, write back only if nobody wrote in between
(S3 conditional writes; a lock file in a directory). What a killed run leaves behind (an
open multipart upload, a .partial file) is removed by discard() once the caller knows
the key was abandoned.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import io
import json
import os
import queue
import random
import threading
import time

from ..foundation import durations
from ..foundation.errors import CaretakerError, ConfigError, TransientError

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
    "part_size_mb": {"type": "int", "default": 8},
    "max_attempts": {"type": "int", "default": 5},
    "read_timeout": durations.option(default="1m"),
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

    def _put(self, key, data: bytes):
        writer = self.open_writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def get_json(self, key):
        """The JSON document at key, or None when there is none."""
        try:
            with open(self._path(key), "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None

    def update_json(self, key, change):
        """Apply change(document or None) under a lock; it returns the new document, or None to write nothing."""
        path = self._path(key)
        directory, name = os.path.split(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(os.path.join(directory, f".{name}.lock"), "a", opener=_private) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            document = self.get_json(key)
            changed = change(document)
            if changed is None:
                return document
            self._put(key, _dump_json(changed))
            return changed

    def open_reader(self, key):
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise CaretakerError(f"{self._path(key)} does not exist") from None

    def delete(self, keys):
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))
            self.requests += 1

    def discard(self, keys):
        """Remove what runs that never finished left under these keys: the file and its .partial."""
        for key in keys:
            directory, name = os.path.split(self._path(key))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, f".{name}.partial"))
        self.delete(keys)


def _private(path, flags):
    return os.open(path, flags, 0o600)


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


def _dump_json(document) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True).encode()


def _boto_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _error_code(exc):
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _s3_error(exc, what):
    """A boto error -> ConfigError (no bucket, refused credentials), TransientError (network, 5xx,
    throttling) or CaretakerError."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ConfigError("no S3 credentials: set access_key/secret_key or configure the boto3 credential chain", field="access_key")
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"{what}: {code or status} {exc.response.get('Error', {}).get('Message', '')}".strip()
        if code == "NoSuchBucket":
            return ConfigError(f"{what}: the bucket does not exist", field="bucket")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ConfigError(f"{what}: access denied ({code}): check the credentials", field="access_key")
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

    def _get_json_tagged(self, key):
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return json.loads(answer["Body"].read()), answer["ETag"]
        except _boto_errors() as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "NoSuchKey":
                return None, None
            raise _s3_error(exc, f"cannot read {self.describe(key)}") from None

    def get_json(self, key):
        """The JSON document at key, or None when there is none."""
        return self._get_json_tagged(key)[0]

    def update_json(self, key, change, attempts=8):
        """Apply change(document or None) and write the result only if the object is still the one read
        (If-Match, or If-None-Match for a new one): a concurrent writer makes us read and apply again."""
        for attempt in range(attempts):
            document, etag = self._get_json_tagged(key)
            changed = change(document)
            if changed is None:
                return document
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=_dump_json(changed), ContentType="application/json", **condition, **self._extra())
                return changed
            except _boto_errors() as exc:
                if _error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise _s3_error(exc, f"cannot write {self.describe(key)}") from None
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))  # noqa: S311 - not crypto
        raise TransientError(f"{self.describe(key)} kept changing while this run tried to update it ({attempts} attempts)")

    def open_reader(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except _boto_errors() as exc:
            raise _s3_error(exc, f"cannot read {self.describe(key)}") from None

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

    def discard(self, keys):
        """Abort the multipart uploads runs that never finished left open under these keys, then delete the keys."""
        for key in keys:
            try:
                uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key).get("Uploads", [])
                for upload in uploads:
                    if upload["Key"] == key:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
            except _boto_errors() as exc:
                raise _s3_error(exc, f"cannot abort the incomplete upload of {self.describe(key)}") from None
        self.delete(keys)


class _MultipartWriter:
    """Cuts the stream into parts of exactly part_size bytes (the last may be shorter) and
    uploads them from a thread, one part in flight and one waiting, so memory stays near
    three parts: each part is joined once from the chunks written and never copied again."""

    def __init__(self, store, key):
        self.store = store
        self.key = key
        self.client = store.client
        self.chunks = collections.deque()
        self.buffered = 0
        self.parts = []
        self.sent = 0
        self.error = None
        # CRC32 declared up front, as the AWS CLI does: the store checks every part against its
        # checksum and keeps a composite one. Left undeclared, current S3 (and moto) compute a
        # full-object CRC64 at completion, which here costs the store a second pass over the backup.
        try:
            answer = self.client.create_multipart_upload(
                Bucket=store.bucket, Key=key, ContentType="application/octet-stream", ChecksumAlgorithm="CRC32", **store._extra()
            )
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
                answer = self.client.upload_part(
                    Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=io.BytesIO(data), ChecksumAlgorithm="CRC32"
                )
                part = {"PartNumber": number, "ETag": answer["ETag"]}
                if answer.get("ChecksumCRC32"):  # stores without checksum support return none
                    part["ChecksumCRC32"] = answer["ChecksumCRC32"]
                self.parts.append(part)
            except Exception as exc:  # noqa: BLE001 - any failure is reported to the writer thread on its next call
                self.error = _s3_error(exc, f"cannot upload part {number} of {self.store.describe(self.key)}")
            del item, data  # let the part go before waiting for the next one: memory stays at three parts

    def _raise_if_failed(self):
        if self.error is not None:
            raise self.error

    def _send(self, data):
        self._raise_if_failed()
        if self.sent >= 10000:
            raise CaretakerError("the backup needs more than 10,000 parts: raise part_size_mb")
        self.sent += 1
        self.queue.put((self.sent, data))

    def _take(self, size):
        """Exactly size bytes (or all that is buffered, if less) off the front of the chunks."""
        taken, length = [], 0
        while self.chunks and length < size:
            chunk = self.chunks.popleft()
            if length + len(chunk) > size:
                cut = size - length
                self.chunks.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            taken.append(chunk)
            length += len(chunk)
        self.buffered -= length
        return b"".join(taken)

    def write(self, data):
        self.chunks.append(bytes(data))
        self.buffered += len(data)
        while self.buffered >= self.store.part_size:
            self._send(self._take(self.store.part_size))

    def commit(self):
        if self.buffered or not self.sent:
            self._send(self._take(self.buffered))
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
