"""RuuviTag data format 5 (RAWv2) against Ruuvi's documentation.

Source: docs.ruuvi.com "Data format 5 (RAWv2)", last updated 2021-08-25 (ruuvi/docs
communication/bluetooth-advertisements/data-format-5-rawv2.md): its four test vectors (valid,
maximum, minimum, invalid) and the example values of each field's table. Ruuvi gives
pressure in Pa and acceleration in G; we report hPa (Pa / 100) and m/s² (G * 9.80665, the
standard gravity), converted by hand below. "Not available" fields are left out.
"""

from __future__ import annotations

import pytest

from drivers.ble import BLEDecodeError, decode, decode_frame
from tests.ble_adv import make_adv

RUUVI = 0x0499
ADDR = "CB:B8:33:4C:88:4F"
G = 9.80665


def ruuvi(hex_data: str):
    return decode_frame(ADDR, make_adv(manufacturer_data={RUUVI: bytes.fromhex(hex_data)}))


def test_valid_data_vector():
    frame = ruuvi("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")
    assert frame.format == "ruuvi_v5"
    assert frame.packet_id == 205  # measurement sequence: Ruuvi's de-duplication number
    assert dict(frame.values) == pytest.approx(
        {
            "temperature": 24.3,
            "humidity": 53.49,
            "pressure": 1000.44,  # 100044 Pa
            "acceleration_x": 0.004 * G,
            "acceleration_y": -0.004 * G,
            "acceleration_z": 1.036 * G,
            "tx_power": 4,
            "voltage": 2.977,
            "movement_counter": 66,
        }
    )


def test_maximum_values_vector():
    frame = ruuvi("057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F")
    assert frame.packet_id == 65534
    assert dict(frame.values) == pytest.approx(
        {
            "temperature": 163.835,
            "humidity": 163.835,
            "pressure": 1155.34,  # 115534 Pa
            "acceleration_x": 32.767 * G,
            "acceleration_y": 32.767 * G,
            "acceleration_z": 32.767 * G,
            "tx_power": 20,
            "voltage": 3.646,
            "movement_counter": 254,
        }
    )


def test_minimum_values_vector():
    # The corrected vector (ruuvi-sensor-protocols issue #30): temperature 0x8001.
    frame = ruuvi("058001000000008001800180010000000000CBB8334C884F")
    assert frame.packet_id == 0
    assert dict(frame.values) == pytest.approx(
        {
            "temperature": -163.835,
            "humidity": 0.0,
            "pressure": 500.0,  # 50000 Pa
            "acceleration_x": -32.767 * G,
            "acceleration_y": -32.767 * G,
            "acceleration_z": -32.767 * G,
            "tx_power": -40,
            "voltage": 1.6,
            "movement_counter": 0,
        }
    )


def test_invalid_values_vector_reports_nothing():
    # Every field at its "not available" marker: no value at all, not NaN and not a number.
    frame = ruuvi("058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF")
    assert dict(frame.values) == {}
    assert frame.packet_id is None


def test_field_table_examples():
    # temperature 0x01C3 = +2.255 °C; humidity 10010 (0x271A) = 25.025 %; pressure 51325
    # (0xC87D) = 101325 Pa; acceleration 0xFC18 = -1000 mG, 0x03E8 = 1000 mG, 0x8000 = n/a;
    # power info: battery 1400 (3000 mV) << 5 | TX 22 (+4 dBm) = 44822 = 0xAF16;
    # movement 100 (0x64); sequence 1000 (0x03E8).
    frame = ruuvi("0501C3271AC87DFC1803E88000AF166403E8CBB8334C884F")
    assert frame.packet_id == 1000
    assert dict(frame.values) == pytest.approx(
        {
            "temperature": 2.255,
            "humidity": 25.025,
            "pressure": 1013.25,
            "acceleration_x": -G,
            "acceleration_y": G,
            "voltage": 3.0,
            "tx_power": 4,
            "movement_counter": 100,
        }
    )
    # temperature 0xFE3D = -2.255 °C
    frame = ruuvi("05FE3D" + "0000" * 5 + "AF166403E8CBB8334C884F")
    assert frame.values["temperature"] == pytest.approx(-2.255)


@pytest.mark.parametrize("cut", [1, 2, 10, 23])
def test_truncated_raises(cut):
    with pytest.raises(BLEDecodeError, match="ruuvi_v5"):
        ruuvi("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"[: cut * 2])


def test_too_long_raises():
    with pytest.raises(BLEDecodeError, match="24"):
        ruuvi("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F00")


def test_other_data_formats_are_not_decoded():
    # Data format 3 (RAWv1), docs.ruuvi.com's valid vector: not ours to decode.
    assert ruuvi("03291A1ECE1EFC18F94202CA0B53") is None
    assert ruuvi("") is None
    assert decode(ADDR, make_adv(manufacturer_data={RUUVI: bytes.fromhex("0300")})) is None
