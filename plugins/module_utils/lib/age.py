"""The age file format (https://age-encryption.org/v1) for X25519 recipients, streaming.

Backups are encrypted on the host to public keys only, so a stolen host cannot read old
backups; the standard `age -d -i KEY` decrypts them. Built on `cryptography`'s X25519,
HKDF-SHA256, HMAC-SHA256 and ChaCha20-Poly1305 primitives, following the spec:
a text header (one X25519 stanza per recipient, MACed with a key derived from the file
key), a 16-byte nonce, then the STREAM payload in 64 KiB chunks whose nonce is an 11-byte
big-endian counter and a last-chunk flag byte.
"""

from __future__ import annotations

import base64
import hmac
import os

from ..foundation.errors import CaretakerError, ConfigError

INTRO = b"age-encryption.org/v1\n"
X25519_LABEL = b"age-encryption.org/v1/X25519"
CHUNK = 64 * 1024
TAG = 16
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"

# Bech32 (BIP 173), which age uses for its keys; age does not apply the 90-character limit.
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values):
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for index, generator in enumerate(_GENERATOR):
            if (top >> index) & 1:
                check ^= generator
    return check


def _hrp_expand(hrp):
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _convert_bits(data, from_bits, to_bits, pad):
    accumulator, bits, out = 0, 0, []
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & ((1 << to_bits) - 1))
    if pad and bits:
        out.append((accumulator << (to_bits - bits)) & ((1 << to_bits) - 1))
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & ((1 << to_bits) - 1)):
        raise ValueError("invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert_bits(data, 8, 5, True)
    checksum = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    words += [(checksum >> 5 * (5 - index)) & 31 for index in range(6)]
    return hrp + "1" + "".join(_CHARSET[word] for word in words)


def bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise ValueError("no separator or too short")
    hrp, rest = text[:separator], text[separator + 1 :]
    if any(char not in _CHARSET for char in rest):
        raise ValueError("invalid character")
    words = [_CHARSET.index(char) for char in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise ValueError("bad checksum")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, False))


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    if b"=" in text or b"\r" in text:
        raise ValueError("non-canonical base64")
    decoded = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    if _b64(decoded) != text:
        raise ValueError("non-canonical base64")
    return decoded


def _hkdf(key, salt, info):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def parse_recipient(text: str, field: str = "recipients") -> bytes:
    """An `age1...` public key -> its 32 raw bytes; ConfigError naming the field if invalid."""
    try:
        hrp, key = bech32_decode(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not an age X25519 recipient (age1...): {exc}", field=field) from None
    if hrp != RECIPIENT_HRP or len(key) != 32:
        raise ConfigError(f"{text!r} is not an age X25519 recipient (age1...)", field=field)
    return key


def parse_identities(text: str, field: str = "identity_file") -> list:
    """The AGE-SECRET-KEY-1... lines of an identity file -> X25519PrivateKey objects."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            hrp, raw = bech32_decode(line)
        except ValueError as exc:
            raise ConfigError(f"a line is not an age identity (AGE-SECRET-KEY-1...): {exc}", field=field) from None
        if hrp != IDENTITY_HRP or len(raw) != 32:
            raise ConfigError("a line is not an age X25519 identity (AGE-SECRET-KEY-1...)", field=field)
        keys.append(X25519PrivateKey.from_private_bytes(raw))
    if not keys:
        raise ConfigError("holds no age identity (AGE-SECRET-KEY-1...)", field=field)
    return keys


def generate_identity() -> tuple[str, str]:
    """A new key pair as (identity, recipient) strings, as `age-keygen` prints them."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    return bech32_encode(IDENTITY_HRP, _raw_private(private)).upper(), recipient_of(private)


def _raw_private(private) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _raw_public(public) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def recipient_of(private) -> str:
    return bech32_encode(RECIPIENT_HRP, _raw_public(private.public_key()))


def _header_mac(file_key: bytes, header_up_to_dashes: bytes) -> bytes:
    return hmac.new(_hkdf(file_key, b"", b"header"), header_up_to_dashes, "sha256").digest()


def _stream_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Encryptor:
    """write(plaintext) -> sink.write(ciphertext); close() writes the last chunk.

    The STREAM marks the final chunk, so one full chunk is held back until more data or
    the end shows whether it was the last.
    """

    def __init__(self, recipients: list[bytes], sink):
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.sink = sink
        file_key = os.urandom(16)
        lines = [INTRO]
        for recipient in recipients:
            ephemeral = X25519PrivateKey.generate()
            share = _raw_public(ephemeral.public_key())
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
            if shared == bytes(32):
                raise ConfigError("a recipient key is a low-order point", field="recipients")
            wrap_key = _hkdf(shared, share + recipient, X25519_LABEL)
            body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
            lines.append(b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n")
        header = b"".join(lines) + b"---"
        nonce = os.urandom(16)
        sink.write(header + b" " + _b64(_header_mac(file_key, header)) + b"\n" + nonce)
        self.aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self.pending = bytearray()
        self.counter = 0

    def write(self, data):
        self.pending += data
        # Keep at least one byte beyond the flushed chunks: the last chunk is never empty
        # unless the whole plaintext is.
        full = (len(self.pending) - 1) // CHUNK
        for index in range(full):
            chunk = bytes(self.pending[index * CHUNK : (index + 1) * CHUNK])
            self.sink.write(self.aead.encrypt(_stream_nonce(self.counter, False), chunk, None))
            self.counter += 1
        if full:
            del self.pending[: full * CHUNK]

    def close(self):
        self.sink.write(self.aead.encrypt(_stream_nonce(self.counter, True), bytes(self.pending), None))
        self.pending = bytearray()


def _read_line(read, limit=4096):
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = read(1)
        if not byte:
            raise CaretakerError("not an age file: the header ends early")
        line += byte
        if len(line) > limit:
            raise CaretakerError("not an age file: header line too long")
    return bytes(line)


def _unwrap_file_key(read, identities):
    """Read the header from read(n); return (file key, bytes consumed are implicit)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if _read_line(read) != INTRO:
        raise CaretakerError("not an age v1 file")
    header = bytearray(INTRO)
    stanzas = []
    while True:
        line = _read_line(read)
        if line.startswith(b"---"):
            header += b"---"
            mac_text = line[3:].strip()
            break
        header += line
        if not line.startswith(b"-> "):
            raise CaretakerError("not an age file: malformed stanza")
        arguments = line[3:-1].split(b" ")
        body = bytearray()
        while True:
            body_line = _read_line(read)
            header += body_line
            body += body_line[:-1]
            if len(body_line) - 1 < 64:
                break
        stanzas.append((arguments, bytes(body)))
    for arguments, body in stanzas:
        if arguments[0] != b"X25519" or len(arguments) != 2:
            continue
        share = _unb64(arguments[1])
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        for identity in identities:
            shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
            wrap_key = _hkdf(shared, share + _raw_public(identity.public_key()), X25519_LABEL)
            try:
                file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), _unb64(body), None)
            except InvalidTag:
                continue
            if not hmac.compare_digest(_header_mac(file_key, bytes(header)), _unb64(mac_text)):
                raise CaretakerError("age header MAC does not verify: the backup header was altered")
            return file_key
    raise CaretakerError("none of the identities can decrypt this backup (no matching X25519 recipient)")


class Decryptor:
    """Reads an age file from read(n) and yields the plaintext in chunks."""

    def __init__(self, read, identities):
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.read = read
        file_key = _unwrap_file_key(read, identities)
        nonce = read(16)
        if len(nonce) != 16:
            raise CaretakerError("age file truncated after the header")
        self.aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))

    def _read_exact(self, size):
        data = bytearray()
        while len(data) < size:
            piece = self.read(size - len(data))
            if not piece:
                break
            data += piece
        return bytes(data)

    def chunks(self):
        from cryptography.exceptions import InvalidTag

        counter = 0
        current = self._read_exact(CHUNK + TAG)
        while True:
            following = self._read_exact(CHUNK + TAG) if len(current) == CHUNK + TAG else b""
            last = not following
            try:
                yield self.aead.decrypt(_stream_nonce(counter, last), current, None)
            except InvalidTag:
                raise CaretakerError(f"age payload chunk {counter} does not verify: the backup is damaged or truncated") from None
            if last:
                return
            counter += 1
            current = following
