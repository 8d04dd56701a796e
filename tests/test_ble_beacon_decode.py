"""iBeacon and Eddystone decoders against the beacon specifications.

iBeacon: Apple "Proximity Beacon Specification" R1 (2015): manufacturer data of company
0x004C = 02 15, 16-byte UUID, major (uint16 BE), minor (uint16 BE), measured power (int8).
"""

from __future__ import annotations

import pytest

from drivers.ble import BLEDecodeError, decode, decode_frame
from tests.ble_adv import make_adv

ADDR = "C4:7C:8D:6A:3E:1F"
APPLE = 0x004C

# UUID E2C56DB5-DFFB-48D2-B060-D0F5A71096E0 (Apple's AirLocate sample UUID), major 1 (00 01),
# minor 2 (00 02), measured power 0xC5 = 197 - 256 = -59 dBm.
IBEACON = bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010002c5")


def test_ibeacon_fields():
    assert decode(ADDR, make_adv(manufacturer_data={APPLE: IBEACON})) == {
        "uuid": "e2c56db5-dffb-48d2-b060-d0f5a71096e0",
        "major": 1,
        "minor": 2,
        "tx_power": -59,
    }
    frame = decode_frame(ADDR, make_adv(manufacturer_data={APPLE: IBEACON}))
    assert frame is not None
    assert (frame.format, frame.packet_id, frame.counter, frame.encrypted) == (
        "ibeacon", None, None, False,
    )  # fmt: skip


def test_ibeacon_big_endian_major_minor():
    # major 0x1234 = 4660, minor 0xFFFF = 65535, power 0x7F = +127 (int8 upper bound)
    data = bytes.fromhex("0215" + "00" * 16 + "1234ffff7f")
    assert decode(ADDR, make_adv(manufacturer_data={APPLE: data})) == {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "major": 4660,
        "minor": 65535,
        "tx_power": 127,
    }


def test_other_apple_data_is_not_a_beacon():
    # 0x10 is Apple's "nearby info" type, sent by every iPhone: not ours to decode.
    assert (
        decode(ADDR, make_adv(manufacturer_data={APPLE: bytes.fromhex("1005031c0a3b7e")})) is None
    )


@pytest.mark.parametrize("cut", range(2, len(IBEACON)))
def test_truncated_ibeacon_raises(cut):
    with pytest.raises(BLEDecodeError, match="ibeacon"):
        decode(ADDR, make_adv(manufacturer_data={APPLE: IBEACON[:cut]}))


def test_empty_advertisement_is_none():
    assert decode(ADDR, make_adv()) is None
