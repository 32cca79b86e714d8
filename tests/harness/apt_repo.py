"""Publish a flat apt repository of real (empty) .deb packages; standard library and dpkg-deb only,
so pytest fixtures and molecule scenarios (inside the test containers) build repositories the same way.

usage: python3 apt_repo.py DIR '{"origin": "Debian", "label": "Debian-Security", "suite": "bookworm-security",
                        "packages": [{"name": "demo", "version": "1.1", "postinst": "#!/bin/sh\\n..."}]}'
"""

import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile


def build_deb(directory: pathlib.Path, name: str, version: str, postinst: str | None = None) -> tuple[str, pathlib.Path]:
    control = f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: caretaker tests <tests@example.org>\nDescription: test package\n"
    with tempfile.TemporaryDirectory() as build:
        debian = pathlib.Path(build) / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(control)
        if postinst:
            (debian / "postinst").write_text(postinst)
            (debian / "postinst").chmod(0o755)
        deb = directory / f"{name}_{version}_all.deb"
        subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", build, str(deb)], check=True, capture_output=True)
    return control, deb


def publish(directory, label, suite, packages, origin="Debian") -> pathlib.Path:
    """Write the .deb files, Packages and Release of a repository usable as `deb [trusted=yes] file:DIR ./`."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for package in packages:
        control, deb = build_deb(directory, package["name"], package["version"], package.get("postinst"))
        data = deb.read_bytes()
        stanzas.append(control + f"Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
    index = "\n".join(stanzas).encode()
    (directory / "Packages").write_bytes(index)
    (directory / "Release").write_text(
        f"Origin: {origin}\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\nDate: Mon, 23 Nov 2026 00:00:00 UTC\n"
        f"Architectures: all amd64 arm64\nSHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n"
    )
    return directory


if __name__ == "__main__":
    spec = json.loads(sys.argv[2])
    publish(sys.argv[1], spec["label"], spec["suite"], spec["packages"], spec.get("origin", "Debian"))
