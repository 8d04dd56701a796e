"""Xiaomi MiBeacon (service data 0xFE95) on real advertisements from the peers' test suites.

Sources, with the addresses and bindkeys those tests publish (each vector names its own):
- xiaomi-ble (Bluetooth-Devices/xiaomi-ble, tests/test_parser.py at 509f516, July 2026):
  test_Xiaomi_LYWSDCGQ, test_Xiaomi_CGG1, test_Xiaomi_LYWSD03MMC, test_Xiaomi_MHO_C401,
  test_Xiaomi_CGDK2, test_Xiaomi_XMWSDJ04MMC;
- ble_monitor (custom-components/ble_monitor, custom_components/ble_monitor/test/
  test_xiaomi_parser.py at 5690220, July 2026): the same captures as raw HCI events, with the
  full-resolution values (test_Xiaomi_LYWSD03MMC_encrypted: humidity 46.7, where xiaomi-ble
  shows LYWSD03MMC humidity truncated to whole percent) and a second LYWSDCGQ capture.
Values are the Mi IoT object definitions' (0x1004 temperature, 0x1006 humidity, 0x100D both,
int16/uint16 in 0.1), which both parsers agree on. The HCI events' service data is the bytes
after "16 95 fe" up to the AD structure's length (the event's last byte is the RSSI).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from drivers.ble import BLEDecodeError, BLEKeyError, decode_frame
from tests.ble_adv import make_adv


def xiaomi(address: str, data: bytes, key: bytes | None = None):
    return decode_frame(address, make_adv(service_data={0xFE95: data}), key)


# (test, address, service data, bindkey or None, packet id, values)
VECTORS = [
    ("xiaomi-ble test_Xiaomi_LYWSDCGQ (MiBeacon v2, plain)", "58:2D:34:3B:2E:BF",
     b"P \xaa\x01\xa3\xbf.;4-X\r\x10\x04\xb4\x00\x95\x02\n\x10\x01;", None, 0xA3,
     {"temperature": 18.0, "humidity": 66.1, "battery": 59.0}),
    ("ble_monitor test_Xiaomi_LYWSDCGQ (MiBeacon v2, plain)", "58:2D:34:35:93:21",
     bytes.fromhex("5020aa01da219335342d580d1004fe004802"), None, 218,
     {"temperature": 25.4, "humidity": 58.4}),
    ("xiaomi-ble test_Xiaomi_LYWSD03MMC (MiBeacon v3, plain)", "A4:C1:38:B4:94:4C",
     b"P0[\x05\x03L\x94\xb48\xc1\xa4\r\x10\x04\x10\x01\xea\x01", None, 3,
     {"temperature": 27.2, "humidity": 49.0}),
    ("xiaomi-ble test_Xiaomi_MHO_C401 (MiBeacon v3, plain)", "A4:C1:38:B4:94:4C",
     b"P0\x87\x03\x03L\x94\xb48\xc1\xa4\r\x10\x04\x10\x01\xea\x01", None, 3,
     {"temperature": 27.2, "humidity": 49.0}),
    ("ble_monitor test_Xiaomi_LYWSD03MMC_encrypted (MiBeacon v5)", "A4:C1:38:02:83:F4",
     bytes.fromhex("58585b0550f4830238c1a495ef58763c26000097e2abb5"),
     "e9ea895fac7cca6d30532432a516f3a8", 80, {"humidity": 46.7}),
    ("xiaomi-ble test_Xiaomi_CGG1 (CGG1-ENCRYPTED, MiBeacon v5)", "5A:58:2D:34:12:5F",
     b"XXH\x0bh_\x124-XZ\x0b\x18A\xe2\xaa\x00\x0e\x00\xa4\x96O\xb5",
     "814aac74c4f17b6c1581e1ab87816b99", 104, {"humidity": 59.6}),
    ("xiaomi-ble test_Xiaomi_CGDK2 (MiBeacon v5)", "58:2D:34:12:20:89",
     b"XXo\x06\x07\x89 \x124-X_\x17m\xd5O\x02\x00\x00/\xa4S\xfa",
     "a3bfe9853dd85a620debe3620caaa351", 7, {"temperature": 22.6}),
    ("xiaomi-ble test_Xiaomi_XMWSDJ04MMC (MiBeacon v4, MAC not in the frame)",
     "2C:11:65:25:70:04", b"HY\x03\x12\xa4\x1bwn|\x96\xad\xd7\x00\x00\x00\xf2\xbfT[",
     "b2cf9a553d53571b5657defd582d676e", 164, {"humidity": 45.0}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "address", "data", "key", "packet_id", "values"),
    VECTORS,
    ids=[v[0] for v in VECTORS],
)
def test_peer_vectors(source, address, data, key, packet_id, values):
    frame = xiaomi(address, data, bytes.fromhex(key) if key else None)
    assert frame.format == "xiaomi"
    assert frame.packet_id == packet_id
    assert dict(frame.values) == values
    assert frame.encrypted is (key is not None)
    if key is not None:
        # Frame counter and the 3-byte extended counter before the MIC, one 32-bit counter.
        assert frame.counter == int.from_bytes(data[4:5] + data[-7:-4], "little")
        assert frame.counter_bits == 32


LYWSD03 = ("A4:C1:38:02:83:F4", bytes.fromhex("58585b0550f4830238c1a495ef58763c26000097e2abb5"))
LYWSD03_KEY = bytes.fromhex("e9ea895fac7cca6d30532432a516f3a8")


def test_wrong_key_is_a_key_error_never_values():
    address, data = LYWSD03
    with pytest.raises(BLEKeyError, match="integrity"):
        xiaomi(address, data, bytes.fromhex("814aac74c4f17b6c1581e1ab87816b99"))


def test_encrypted_without_key_is_a_key_error():
    address, data = LYWSD03
    with pytest.raises(BLEKeyError, match="no key"):
        xiaomi(address, data)


def test_altered_counter_fails_the_integrity_check():
    address, data = LYWSD03
    altered = data[:-7] + bytes([data[-7] ^ 1]) + data[-6:]
    with pytest.raises(BLEKeyError):
        xiaomi(address, altered, LYWSD03_KEY)


def test_a_frame_carrying_another_devices_mac_is_not_this_devices():
    _, data = LYWSD03
    assert xiaomi("A4:C1:38:00:00:01", data, LYWSD03_KEY) is None


def test_legacy_encryption_cannot_be_authenticated_and_gives_a_key_error():
    # MiBeacon v3 with the encrypted bit set (frame control 0x3058): any key "decrypts" it.
    data = (
        bytes.fromhex("5830") + bytes.fromhex("5b0503") + bytes.fromhex("4c94b438c1a4") + bytes(9)
    )
    with pytest.raises(BLEKeyError, match="no integrity check"):
        xiaomi("A4:C1:38:B4:94:4C", data, LYWSD03_KEY)


@pytest.mark.parametrize(
    ("why", "data"),
    [
        (
            "no objects (a capability beacon: frame control 0x5830 without bit 6)",
            bytes.fromhex("30585b0503") + bytes.fromhex("4c94b438c1a4") + b"\x08",
        ),
        ("mesh", bytes.fromhex("d0305b05034c94b438c1a40d10041001ea01")),
        ("version 1", bytes.fromhex("50105b05034c94b438c1a40d10041001ea01")),
    ],
)
def test_frames_that_carry_no_readings_give_nothing(why, data):
    assert xiaomi("A4:C1:38:B4:94:4C", data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"P0[\x05",  # shorter than the header
        b"P0[\x05\x03L\x94\xb4",  # MAC cut short
        b"P0[\x05\x03L\x94\xb48\xc1\xa4\r\x10\x04\x10\x01\xea",  # object cut short
        b"P0[\x05\x03L\x94\xb48\xc1\xa4\r\x10",  # object header cut short
    ],
)
def test_truncated_frames_are_malformed(data):
    with pytest.raises(BLEDecodeError, match="xiaomi"):
        xiaomi("A4:C1:38:B4:94:4C", data)


def test_unknown_objects_are_skipped_and_the_rest_read():
    # 0x1010 (formaldehyde, not read) with its length 2, then 0x100D of the LYWSD03MMC vector.
    data = (
        b"P0[\x05\x03L\x94\xb48\xc1\xa4"
        + bytes.fromhex("1010027d00")
        + b"\r\x10\x04\x10\x01\xea\x01"
    )
    assert dict(xiaomi("A4:C1:38:B4:94:4C", data).values) == {"temperature": 27.2, "humidity": 49.0}


def sealed_like_lywsd03(counter: int) -> bytes:
    """The LYWSD03MMC vector's plaintext sealed again under the test's published key with
    another counter, laid out as the MiBeacon v5 nonce says (MAC reversed, product id, frame
    counter, extended counter; additional data 0x11)."""
    _, data = LYWSD03
    cipher = AESCCM(LYWSD03_KEY, tag_length=4)
    mac_lsb_first = data[5:11]
    old_nonce = mac_lsb_first + data[2:5] + data[-7:-4]
    plain = cipher.decrypt(old_nonce, data[11:-7] + data[-4:], b"\x11")
    frame_counter, ext = counter & 0xFF, (counter >> 8).to_bytes(3, "little")
    head = data[:4] + bytes([frame_counter]) + mac_lsb_first
    sealed = cipher.encrypt(
        mac_lsb_first + data[2:4] + bytes([frame_counter]) + ext, plain, b"\x11"
    )
    return head + sealed[:-4] + ext + sealed[-4:]


def test_replayed_frames_are_refused_by_the_device_layer():
    from agent.config.ble import BleDeviceConfig
    from agent.sensing.ble.devices import DeviceLayer

    address, data = LYWSD03
    now = [1000.0]
    latest: dict = {}
    config = BleDeviceConfig(name="office", address=address, interval=1.0, format="xiaomi",
                             key=LYWSD03_KEY.hex())  # fmt: skip
    layer = DeviceLayer([config], latest, clock=lambda: now[0])
    original = int.from_bytes(data[4:5] + data[-7:-4], "little")

    def hear(frame: bytes) -> list:
        now[0] += 2.0
        latest[address] = (make_adv(service_data={0xFE95: frame}), now[0])
        return layer.tick()[0]

    newer = sealed_like_lywsd03(original + 1)
    assert [r.values for r in hear(newer)] == [{"humidity": 46.7}]
    assert hear(data) == []  # authentic, but its counter is older: a replay
    assert layer.counts()["office"]["replays"] == 1


def test_another_xiaomi_products_objects_give_no_values():
    # xiaomi-ble test_Xiaomi_XMMF01JQD (a Mi Magic Cube, address E2:53:30:E6:D3:54): object
    # 0x1001, a button event we do not read, on the same UUID. No values, so no reading.
    frame = xiaomi("E2:53:30:E6:D3:54", b"P0\xe1\x04\x8eT\xd3\xe60S\xe2\x01\x10\x03\x01\x00\x00")
    assert frame.packet_id == 0x8E and dict(frame.values) == {}
