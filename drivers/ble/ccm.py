"""AES-CCM with a 4-byte MIC, the one cipher both BTHome v2 and the pvvx/ATC bindkey formats
use. cryptography is imported on first use, so a node without encrypted sensors never loads it.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from drivers.ble.frame import BLEKeyError

MIC_LENGTH = 4


@functools.lru_cache(maxsize=64)
def _cipher(key: bytes) -> Any:
    # Building the cipher expands the key schedule: cached per key, since every advertisement
    # of a device uses the same one. The cache holds no secret the caller does not already keep.
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    return AESCCM(key, tag_length=MIC_LENGTH)


def decrypt(
    format: str,
    key: Optional[bytes],
    nonce: bytes,
    ciphertext: bytes,
    mic: bytes,
    aad: Optional[bytes] = None,
) -> bytes:
    """The plaintext, or BLEKeyError when there is no key or the MIC does not match."""
    if key is None:
        raise BLEKeyError(format, "advertisement is encrypted and no key was given")
    from cryptography.exceptions import InvalidTag

    try:
        plaintext: bytes = _cipher(bytes(key)).decrypt(nonce, ciphertext + mic, aad)
    except InvalidTag:
        raise BLEKeyError(
            format, "message integrity check failed: wrong key, or the data was altered"
        ) from None
    return plaintext
