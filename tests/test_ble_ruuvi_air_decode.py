"""Ruuvi Air data formats 6 and E1 against the Ruuvi docs' own test vectors.

Source: docs.ruuvi.com "Data format 6" and "Data format E1 (Extended v1)" (ruuvi/docs,
communication/bluetooth-advertisements/data-format-6.md at 5ea92a6 and data-format-e1.md at
94fb54e, November 2025), "Test vectors" sections, based on ruuvi.endpoints.c. The vectors
mark reserved bytes "XX"; they are sent as FF (the layout's "Reserved: 255") and written so
here. Expected values are the docs' tables, converted to our units only: Pa -> hPa
(101102 Pa = 1011.02 hPa).
"""

from __future__ import annotations

import pytest

from drivers.ble import BLEDecodeError, decode_frame
from tests.ble_adv import make_adv

MAC = "CB:B8:33:4C:88:4F"


def ruuvi(hex_data: str):
    return decode_frame(MAC, make_adv(manufacturer_data={0x0499: bytes.fromhex(hex_data)}))


def test_df6_valid_data():
    # Raw binary data 0x06170C5668C79E007000C90501D9XXCD004C884F.
    frame = ruuvi("06170C5668C79E007000C90501D9FFCD004C884F")
    assert frame.format == "ruuvi_df6"
    assert frame.packet_id == 205
    assert dict(frame.values) == {
        "temperature": 29.5,
        "humidity": 55.3,
        "pressure": 1011.02,
        "pm2_5": 11.2,
        "co2": 201.0,
        "voc_index": 10,
        "nox_index": 2,
        "illuminance": 13026.67,
        "calibrating": False,
    }


def test_df6_maximum_values():
    frame = ruuvi("067FFF9C40FFFE27109C40FAFAFEFFFF074C8F4F")
    assert frame.packet_id == 255
    assert dict(frame.values) == {
        "temperature": 163.835,
        "humidity": 100.0,
        "pressure": 1155.34,
        "pm2_5": 1000.0,
        "co2": 40000.0,
        "voc_index": 500,
        "nox_index": 500,
        "illuminance": 65535.0,
        "calibrating": True,
    }


def test_df6_minimum_values():
    frame = ruuvi("0680010000000000000000000000FF00004C884F")
    assert frame.packet_id == 0
    assert dict(frame.values) == {
        "temperature": -163.835,
        "humidity": 0.0,
        "pressure": 500.0,
        "pm2_5": 0.0,
        "co2": 0.0,
        "voc_index": 0,
        "nox_index": 0,
        "illuminance": 0.0,
        "calibrating": False,
    }


def test_df6_invalid_values_are_left_out():
    # Every field at its "not available" marker: NaN in the docs, left out here. The
    # sequence has no marker in format 6 (255 is a count); calibration flag set.
    frame = ruuvi("068000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
    assert frame.packet_id == 255
    assert dict(frame.values) == {"calibrating": True}


@pytest.mark.parametrize(
    ("code", "lux"),
    # The docs' luminosity examples: 0x00 0 lx, 0x01 0.04 lx, 0x10 1.01 lx, 0xFE 65535 lx.
    # (Its 0x80 row, 244.06 lx, disagrees with its own formula, which gives 266.43 lx for
    # code 128, and with the valid-data vector; the formula is followed.)
    [(0x00, 0.0), (0x01, 0.04), (0x10, 1.01), (0xFE, 65535.0)],
)
def test_df6_luminosity_is_logarithmic(code: int, lux: float):
    frame = ruuvi(f"06170C5668C79E007000C90501{code:02X}FFCD004C884F")
    assert frame.values["illuminance"] == lux


def test_e1_valid_data():
    frame = ruuvi(
        "E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C884F"
    )
    assert frame.format == "ruuvi_e1"
    assert frame.packet_id == 14601710
    assert dict(frame.values) == {
        "temperature": 29.5,
        "humidity": 55.3,
        "pressure": 1011.02,
        "pm1_0": 10.1,
        "pm2_5": 11.2,
        "pm4_0": 121.3,
        "pm10": 455.4,
        "co2": 201.0,
        "voc_index": 20,
        "nox_index": 4,
        "illuminance": 13027.0,
        "calibrating": True,
    }


def test_e1_maximum_values():
    frame = ruuvi(
        "E17FFF9C40FFFE27102710271027109C40FAFADC28F0FFFFFFFFFFFE3FFFFFFFFFFFCBB8334C884F"
    )
    assert frame.packet_id == 16777214
    assert dict(frame.values) == {
        "temperature": 163.835,
        "humidity": 100.0,
        "pressure": 1155.34,
        "pm1_0": 1000.0,
        "pm2_5": 1000.0,
        "pm4_0": 1000.0,
        "pm10": 1000.0,
        "co2": 40000.0,
        "voc_index": 500,
        "nox_index": 500,
        "illuminance": 144284.0,
        "calibrating": True,
    }


def test_e1_minimum_values():
    # The docs' vector writes the flags byte "0X" (a typo: bit 0, calibration, is no
    # don't-care, and the table says false); sent here as 00.
    frame = ruuvi(
        "E1800100000000000000000000000000000000000000FFFFFF00000000FFFFFFFFFFCBB8334C884F"
    )
    assert frame.packet_id == 0
    assert dict(frame.values) == {
        "temperature": -163.835,
        "humidity": 0.0,
        "pressure": 500.0,
        "pm1_0": 0.0,
        "pm2_5": 0.0,
        "pm4_0": 0.0,
        "pm10": 0.0,
        "co2": 0.0,
        "voc_index": 0,
        "nox_index": 0,
        "illuminance": 0.0,
        "calibrating": False,
    }


def test_e1_invalid_values_are_left_out():
    frame = ruuvi(
        "E18000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFF"
    )
    assert frame.packet_id is None  # 16 777 215 is "not available" in E1
    assert dict(frame.values) == {"calibrating": False}


@pytest.mark.parametrize(
    "hex_data",
    [
        "06170C5668C79E007000C90501D9FFCD004C88",  # format 6 cut by a byte
        "06170C5668C79E007000C90501D9FFCD004C884F00",  # a byte too many
        "E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C88",
        "E1",
    ],
)
def test_a_length_the_format_does_not_have_is_refused(hex_data: str):
    with pytest.raises(BLEDecodeError, match="ruuvi_"):
        ruuvi(hex_data)


@pytest.mark.parametrize("first", ["03", "08", "C5", "F0"])
def test_other_ruuvi_formats_give_nothing(first: str):
    assert ruuvi(first + "00" * 19) is None
