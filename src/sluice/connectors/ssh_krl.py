"""OpenSSH key revocation lists (KRLs), read and written in the binary format `sshd` loads with
`RevokedKeys` (OpenSSH's PROTOCOL.krl).

Sluice revokes the certificates it issued by serial number. A KRL may also hold what an operator
revoked by hand with `ssh-keygen -k -u`: serials, serial ranges and bitmaps, key ids (all kept, bitmaps
as serials), and sections about plain keys (kept byte for byte). A signed KRL is refused: changing it
would break its signature.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAGIC = b"SSHKRL\n\0"
FORMAT_VERSION = 1
SECTION_CERTIFICATES = 1
SECTION_SIGNATURE = 4
CERT_SERIAL_LIST = 0x20
CERT_SERIAL_RANGE = 0x21
CERT_SERIAL_BITMAP = 0x22
CERT_KEY_ID = 0x23


class KrlFormatError(ValueError):
    """The bytes are not a KRL this module can change safely."""


@dataclass
class CertRevocations:
    """What is revoked among the certificates one CA signed."""

    serials: set[int] = field(default_factory=set)
    ranges: set[tuple[int, int]] = field(default_factory=set)
    key_ids: set[str] = field(default_factory=set)

    def covers(self, serial: int) -> bool:
        return serial in self.serials or any(lo <= serial <= hi for lo, hi in self.ranges)


@dataclass
class Krl:
    version: int = 0
    comment: str = ""
    by_ca: dict[bytes, CertRevocations] = field(default_factory=dict)  # CA public key blob -> revoked
    other_sections: list[tuple[int, bytes]] = field(default_factory=list)  # kept as they were read

    def for_ca(self, ca_blob: bytes) -> CertRevocations:
        return self.by_ca.setdefault(ca_blob, CertRevocations())

    def is_revoked(self, ca_blob: bytes, serial: int) -> bool:
        found = self.by_ca.get(ca_blob)
        return found is not None and found.covers(serial)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise KrlFormatError("the KRL is cut short")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def string(self) -> bytes:
        return self.take(self.u32())

    def done(self) -> bool:
        return self.at >= len(self.data)


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _mpint_value(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True) if raw else 0


def parse(data: bytes) -> Krl:
    """A KRL from its bytes; an empty file is an empty KRL."""
    if not data:
        return Krl()
    reader = _Reader(data)
    if reader.take(8) != MAGIC:
        raise KrlFormatError("not an OpenSSH KRL (bad magic)")
    if reader.u32() != FORMAT_VERSION:
        raise KrlFormatError("an OpenSSH KRL of an unknown format version")
    krl = Krl(version=reader.u64())
    reader.u64()  # generated date
    reader.u64()  # flags
    reader.string()  # reserved
    krl.comment = reader.string().decode("utf-8", "replace")
    while not reader.done():
        kind, body = reader.byte(), reader.string()
        if kind == SECTION_SIGNATURE:
            raise KrlFormatError("the KRL is signed; Sluice does not change signed KRLs")
        if kind == SECTION_CERTIFICATES:
            _parse_certificates(body, krl)
        else:
            krl.other_sections.append((kind, body))
    return krl


def _parse_certificates(body: bytes, krl: Krl) -> None:
    reader = _Reader(body)
    revoked = krl.for_ca(reader.string())
    reader.string()  # reserved
    while not reader.done():
        kind, section = reader.byte(), _Reader(reader.string())
        if kind == CERT_SERIAL_LIST:
            while not section.done():
                revoked.serials.add(section.u64())
        elif kind == CERT_SERIAL_RANGE:
            revoked.ranges.add((section.u64(), section.u64()))
        elif kind == CERT_SERIAL_BITMAP:
            offset, bits = section.u64(), _mpint_value(section.string())
            revoked.serials.update(offset + i for i in range(bits.bit_length()) if bits >> i & 1)
        elif kind == CERT_KEY_ID:
            while not section.done():
                revoked.key_ids.add(section.string().decode("utf-8", "replace"))
        else:
            raise KrlFormatError(f"a certificate section of unknown type {kind:#x}")


def serialize(krl: Krl, *, generated_at: int) -> bytes:
    """The KRL's bytes, as `sshd` reads them."""
    out = [MAGIC, struct.pack(">IQQQ", FORMAT_VERSION, krl.version, generated_at, 0)]
    out += [_string(b""), _string(krl.comment.encode())]
    for ca_blob in sorted(krl.by_ca):
        revoked = krl.by_ca[ca_blob]
        if not (revoked.serials or revoked.ranges or revoked.key_ids):
            continue
        body = [_string(ca_blob), _string(b"")]
        if revoked.serials:
            serials = b"".join(struct.pack(">Q", s) for s in sorted(revoked.serials))
            body.append(bytes([CERT_SERIAL_LIST]) + _string(serials))
        for lo, hi in sorted(revoked.ranges):
            body.append(bytes([CERT_SERIAL_RANGE]) + _string(struct.pack(">QQ", lo, hi)))
        if revoked.key_ids:
            ids = b"".join(_string(k.encode()) for k in sorted(revoked.key_ids))
            body.append(bytes([CERT_KEY_ID]) + _string(ids))
        out.append(bytes([SECTION_CERTIFICATES]) + _string(b"".join(body)))
    out += [bytes([kind]) + _string(body) for kind, body in krl.other_sections]
    return b"".join(out)
