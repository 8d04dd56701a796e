"""iBeacon and Eddystone decoders against the beacon specifications.

iBeacon: Apple "Proximity Beacon Specification" Release R1: manufacturer data of company
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


# Eddystone (github.com/google/eddystone: protocol-specification.md, eddystone-uid,
# eddystone-url, eddystone-tlm/tlm-plain.md). Frames built by hand from those layouts.
EDDYSTONE = 0xFEAA


def eddystone(hex_data: str):
    return decode_frame(ADDR, make_adv(service_data={EDDYSTONE: bytes.fromhex(hex_data)}))


UID = "00e70102030405060708090a0b0c0d0e0f10"  # Tx power 0xE7 = 231 - 256 = -25 dBm


@pytest.mark.parametrize("rfu", ["0000", ""])  # full frame, and the 0x15 form without RFU
def test_eddystone_uid(rfu):
    frame = eddystone(UID + rfu)
    assert frame.format == "eddystone_uid"
    assert dict(frame.values) == {
        "namespace": "0102030405060708090a",
        "instance": "0b0c0d0e0f10",
        "tx_power": -25,
    }


@pytest.mark.parametrize("data", [UID[:-2], UID + "00", UID + "000000", "00"])
def test_eddystone_uid_wrong_length(data):
    with pytest.raises(BLEDecodeError, match="eddystone_uid"):
        eddystone(data)


@pytest.mark.parametrize(
    ("frame", "url", "tx_power"),
    [
        # The spec's example URL: scheme 0x03 "https://", then "goo.gl/S6zT6P" as ASCII;
        # Tx power 0x12 = +18 dBm and 0xEE = -18 dBm (the spec's examples).
        ("101203" + b"goo.gl/S6zT6P".hex(), "https://goo.gl/S6zT6P", 18),
        # 0x00 "http://www." + "google" + 0x00 ".com/"
        ("10ee00" + b"google".hex() + "00", "http://www.google.com/", -18),
        # 0x01 "https://www." + "w3" + 0x08 ".org" ; 0x02 "http://" + "a" + 0x0d ".gov"
        ("100001" + b"w3".hex() + "08", "https://www.w3.org", 0),
        ("100002" + b"a".hex() + "0d" + b"/x".hex(), "http://a.gov/x", 0),
        # every expansion code once: 0x01-0x06 with "/", 0x07-0x0c without
        (
            "100003" + "01020304050607" + "08090a0b0c",
            "https://.org/.edu/.net/.info/.biz/.gov/.com.org.edu.net.info.biz",
            0,
        ),
        ("100003", "https://", 0),  # the encoded URL may be empty (length 0-17)
        ("100003" + b"abcdefghijklmnopq".hex(), "https://abcdefghijklmnopq", 0),  # 17
    ],
)
def test_eddystone_url(frame, url, tx_power):
    decoded = eddystone(frame)
    assert decoded.format == "eddystone_url"
    assert dict(decoded.values) == {"url": url, "tx_power": tx_power}


@pytest.mark.parametrize(
    "data",
    [
        "100004" + b"a".hex(),  # scheme 0x04 is not defined
        "1000030e",  # 0x0e..0x20 reserved
        "10000320",  # space (0x20) is reserved too
        "1000037f",  # 0x7f..0xff reserved
        "100003ff",
        "100003" + b"abcdefghijklmnopqr".hex(),  # 18 bytes: longer than 17
        "1000",  # no scheme byte
        "10",
    ],
)
def test_eddystone_url_malformed(data):
    with pytest.raises(BLEDecodeError, match="eddystone_url"):
        eddystone(data)


def test_eddystone_tlm():
    # VBATT 0x0BB8 = 3000 mV; temperature 0x1900 = 25 + 0/256 °C; ADV_CNT 100;
    # SEC_CNT 0x0E10 = 3600 tenths of a second = 360.0 s. All big-endian.
    frame = eddystone("20000bb819000000006400000e10")
    assert frame.format == "eddystone_tlm"
    assert frame.packet_id == 100
    assert dict(frame.values) == {
        "voltage": 3.0,
        "temperature": 25.0,
        "adv_count": 100,
        "uptime": 360.0,
    }


def test_eddystone_tlm_fixed_point_and_not_supported():
    # 0xF780 = -2176 -> -2176 / 256 = -8.5 °C; 0x1680 = 22.5 °C; 0x8000 = not supported;
    # VBATT 0 = not supported (a USB-powered beacon).
    assert eddystone("20000c1cf7800000000100000001").values["temperature"] == -8.5
    assert eddystone("20000c1c16800000000100000001").values["temperature"] == 22.5
    assert dict(eddystone("200000008000ffffffff0000000a").values) == {
        "adv_count": 4294967295,
        "uptime": 1.0,
    }


@pytest.mark.parametrize(
    "data",
    [
        "20000bb819000000006400000e",  # 13 bytes
        "20000bb819000000006400000e1000",  # 15 bytes: the frame is fixed
        "20020bb819000000006400000e10",  # version 2 is not defined
        "20",
    ],
)
def test_eddystone_tlm_malformed(data):
    with pytest.raises(BLEDecodeError, match="eddystone_tlm"):
        eddystone(data)


@pytest.mark.parametrize(
    "data",
    [
        "2001" + "00" * 16,  # encrypted TLM: needs the beacon's identity key
        "3000" + "00" * 8,  # EID: rotating identifier, needs the identity key
        "4000",  # not a frame type of the spec
        "01" + UID[2:] + "0000",  # low nibble must be 0000
        "",
    ],
)
def test_eddystone_frames_not_decoded(data):
    assert eddystone(data) is None
