"""The identity of a tokenizer checkpoint: a short hash of its bytes, and its validation.

Apart from ``checkpoint`` so that code which only checks a hash (e.g. a registry value)
does not import the tokenizer and its quantizer library (~1.4 s).
"""

from __future__ import annotations

import hashlib
import os
import re

CHECKPOINT_HASH_LENGTH = 16  # hex characters of sha256 kept: the feature cache's key
_HASH_PATTERN = re.compile(f"[0-9a-f]{{{CHECKPOINT_HASH_LENGTH}}}")


def checkpoint_hash(path: str | os.PathLike[str], length: int = CHECKPOINT_HASH_LENGTH) -> str:
    """Short sha256 of the checkpoint file's bytes (the feature cache's key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def is_checkpoint_hash(value: object) -> bool:
    """Whether ``value`` is what ``checkpoint_hash`` returns (lower-case hex of its length).

    Hashes become file and group names, so anything else, above all a path such as
    ``../../x``, must be refused before use.
    """
    return isinstance(value, str) and _HASH_PATTERN.fullmatch(value) is not None
