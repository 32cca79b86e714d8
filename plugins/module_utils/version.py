# Private to the caretaker.ops collection: the engine's API may change without notice.
"""The caretaker version, recorded in manifests and reports (kept equal to galaxy.yml's)."""

VERSION = "0.1.0"
