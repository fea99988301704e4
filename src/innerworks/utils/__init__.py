"""Small shared helpers: atomic file writes, seeding, provenance."""

from innerworks.utils.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from innerworks.utils.provenance import provenance
from innerworks.utils.seed import seed_everything

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "read_json",
    "write_json",
    "provenance",
    "seed_everything",
]
