"""The simulator's Ruuvi Air and Xiaomi MiBeacon encoders give the published bytes.

Sources: docs.ruuvi.com "Data format E1", test vector "valid data" (reserved bytes sent as FF);
the LYWSD03MMC captures of ble_monitor's test_xiaomi_parser.py (test_Xiaomi_LYWSD03MMC and
test_Xiaomi_LYWSD03MMC_encrypted, address A4:C1:38:02:83:F4, bindkey
e9ea895fac7cca6d30532432a516f3a8) and xiaomi-ble's test_Xiaomi_LYWSD03MMC.
"""

from __future__ import annotations

from drivers.sim import ble_frames


def test_ruuvi_e1_is_the_docs_valid_data_vector() -> None:
    data = ble_frames.ruuvi_e1(
        temperature=29.5, humidity=55.3, pressure_hpa=1011.02, pm=(10.1, 11.2, 121.3, 455.4),
        co2=201, voc_index=20, nox_index=4, illuminance=13027.0, sequence=14601710,
        calibrating=True, mac="CB:B8:33:4C:88:4F",
    )  # fmt: skip
    assert data == bytes.fromhex(
        "E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C884F"
    )


def test_mibeacon_plain_is_the_lywsd03mmc_capture() -> None:
    data = ble_frames.mibeacon({"temperature": 27.2, "humidity": 49.0}, product_id=0x055B,
                               frame_counter=3, mac="A4:C1:38:B4:94:4C")  # fmt: skip
    assert data == b"P0[\x05\x03L\x94\xb48\xc1\xa4\r\x10\x04\x10\x01\xea\x01"


def test_mibeacon_encrypted_is_the_lywsd03mmc_capture() -> None:
    data = ble_frames.mibeacon(
        {"humidity": 46.7}, product_id=0x055B, frame_counter=0x50, mac="A4:C1:38:02:83:F4",
        key=bytes.fromhex("e9ea895fac7cca6d30532432a516f3a8"), ext_counter=0x26,
    )  # fmt: skip
    assert data == bytes.fromhex("58585b0550f4830238c1a495ef58763c26000097e2abb5")
