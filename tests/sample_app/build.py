"""Build a release tarball of the sample app: build.py RELEASE OUT.tar.gz (v1, v2 or v3)."""

import gzip
import io
import json
import os
import sys
import tarfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
RELEASES = {"v1": {"schema": 1, "health_fails": False}, "v2": {"schema": 2, "health_fails": False}, "v3": {"schema": 2, "health_fails": True}}


def build(release, out):
    spec = RELEASES[release]
    # gzip and tar headers without times: the same release builds to the same sha256
    with open(out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as archive:
        for folder, dirs, files in os.walk(HERE):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, HERE)
                if relative.startswith("migrations/versions/") and int(name[:4]) > spec["schema"]:
                    continue
                info = archive.gettarinfo(path, f"app/{relative}")
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
        data = json.dumps({"name": release, **spec}).encode()
        info = tarfile.TarInfo("app/release.json")
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return out


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2])
