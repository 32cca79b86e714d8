"""The caretaker version, recorded in manifests and reports (kept equal to galaxy.yml's)."""

VERSION = "0.1.0"
