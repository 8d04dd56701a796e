"""What every Sensirion I2C chip shares: 8- or 16-bit commands, 16-bit data words each followed
by a CRC-8, and the same checksum (polynomial 0x31, init 0xFF, no reflection, no final XOR).

Checked against the SHT4x datasheet (v6.5, section 4.4), SHT3x-DIS datasheet (v7, 4.12), SCD4x
datasheet (v1.4, 3.11) and SGP40 datasheet (v1.2, 4.6): all give crc8(0xBEEF) = 0x92.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.base import CRCError, Driver, DriverError

CRC8_POLYNOMIAL = 0x31
CRC8_INIT = 0xFF

# A result not ready at the datasheet's maximum gets this many more 1 ms chances, then the
# measurement counts as lost (the chip reset or hung during it).
RESULT_RETRIES = 2
RESULT_RETRY_S = 0.001


def crc8(data: bytes) -> int:
    crc = CRC8_INIT
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC8_POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def pack_words(words: Sequence[int]) -> bytes:
    """16-bit words as sent on the wire: MSB, LSB, CRC of the two."""
    out = bytearray()
    for word in words:
        pair = word.to_bytes(2, "big")
        out += pair + bytes([crc8(pair)])
    return bytes(out)


def unpack_words(data: bytes, source: str = "chip") -> list[int]:
    """Checks every word's CRC; CRCError names the first that fails."""
    if len(data) % 3:
        raise DriverError(f"{source}: {len(data)} bytes is not a whole number of words")
    words = []
    for i in range(0, len(data), 3):
        pair, crc = data[i : i + 2], data[i + 2]
        if crc8(pair) != crc:
            raise CRCError(
                f"{source}: CRC mismatch in word {i // 3} "
                f"(data 0x{pair.hex()}, CRC 0x{crc:02x}, expected 0x{crc8(pair):02x})"
            )
        words.append(int.from_bytes(pair, "big"))
    return words


class SensirionDriver(Driver):
    """Base of Sensirion drivers: command, wait the datasheet's time, read words with CRC."""

    command_width = 2  # bytes; the SHT4x family uses 1-byte commands

    @property
    def where(self) -> str:
        return f"{self.name} at 0x{self.address:02x}"

    def command(self, command: int, args: Sequence[int] = ()) -> None:
        self.send(command.to_bytes(self.command_width, "big") + pack_words(args))

    def read_words(self, count: int) -> list[int]:
        return unpack_words(self.receive(3 * count), f"{self.name} at 0x{self.address:02x}")

    def query(self, command: int, count: int, delay: float, args: Sequence[int] = ()) -> list[int]:
        """Sends a command, waits its execution time, then reads its reply words."""
        self.command(command, args)
        self.sleep(delay)
        return self.read_words(count)

    def read_result(self, count: int, waited: float) -> list[int]:
        """A measurement's words, after its datasheet time `waited` has been slept; the chip
        NACKs the read header until they are ready, so a late one gets a few more chances."""
        for _ in range(RESULT_RETRIES):
            try:
                return self.read_words(count)
            except OSError:
                self.sleep(RESULT_RETRY_S)
        try:
            return self.read_words(count)
        except OSError as e:
            total_ms = (waited + RESULT_RETRIES * RESULT_RETRY_S) * 1000
            raise DriverError(
                f"{self.where}: no result {total_ms:g} ms after the measurement command "
                f"(datasheet maximum {waited * 1000:g} ms): the chip reset or hung"
            ) from e
