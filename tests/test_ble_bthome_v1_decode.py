"""BTHome v1 (legacy, service data 0x181C plain, 0x181E encrypted) on real advertisement bytes.

Sources: bthome.io "BTHome v1" page (home-assistant/bthome.io src/v1.html at 0cf388b): its
example payload 2302C409 0303BF13 (25.00 °C, 50.55 %) and the examples of its tables; the
reference parser's tests, bthome-ble tests/test_parser_v1.py (3.20.0): test_bindkey_correct
(encrypted, address 54:48:E6:8F:80:A5, bindkey 231d39c1d7cc1ab1aee224cd096db932: 25.06 °C,
50.55 %), test_bthome_temperature_humidity_battery, test_bthome_mass_kilograms (a half float),
test_bthome_pressure. Our units where they differ: mass in lb is reported in kg.
"""

from __future__ import annotations

import pytest

from drivers.ble import BLEDecodeError, BLEKeyError, decode_frame
from tests.ble_adv import make_adv

ADDRESS = "54:48:E6:8F:80:A5"
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
ENCRYPTED = b'\xfb\xa45\xe4\xd3\xc3\x12\xfb\x00\x11"3W\xd9\n\x99'


def v1(hex_data: str, address: str = ADDRESS):
    return decode_frame(address, make_adv(service_data={0x181C: bytes.fromhex(hex_data)}))


@pytest.mark.parametrize(
    ("hex_data", "values"),
    [
        ("2302C4090303BF13", {"temperature": 25.0, "humidity": 50.55}),  # the page's example
        (
            "23025D090303B7180201 5D".replace(" ", ""),
            {"temperature": 23.97, "humidity": 63.27, "battery": 93.0},
        ),
        ("0404138A01", {"pressure": 1008.83}),
        ("0405138A14", {"illuminance": 13460.67}),
        ("4306FE70", {"mass": 102.24}),  # format 2: a 2-byte half float, 10224 × 0.01
        ("2308CA06", {"dew_point": 17.38}),
        ("020960", {"count": 96}),
        ("040A138A14", {"energy": 1346.067}),
        ("030C020C", {"voltage": 3.074}),
        ("0312E204", {"co2": 1250.0}),
        ("022E23", {"humidity": 35.0}),
        ("020F01", {"generic_boolean": True}),
        ("021F01", {"unlocked": True}),
        ("023A00023A01", {"button_2": "press"}),  # event 0x00 keeps the numbering
        ("033C0103", {"dimmer": "rotate_left", "dimmer_steps": 3}),
        ("0D5348656C6C6F20576F726C6421", {"text": "Hello World!"}),
    ],
)
def test_spec_examples(hex_data: str, values: dict):
    frame = v1(hex_data)
    assert frame.format == "bthome_v1"
    assert dict(frame.values) == values
    assert not frame.encrypted


def test_packet_id_and_events():
    frame = v1("020009023A04")
    assert frame.packet_id == 9
    assert dict(frame.values) == {"button": "long_press"}
    assert frame.events == {"button"}


def test_encrypted_reference_vector():
    frame = decode_frame(ADDRESS, make_adv(service_data={0x181E: ENCRYPTED}), KEY)
    assert frame.format == "bthome_v1"
    assert dict(frame.values) == {"temperature": 25.06, "humidity": 50.55}
    assert frame.encrypted and frame.counter_bits == 32
    assert frame.counter == int.from_bytes(ENCRYPTED[-8:-4], "little")


def test_encrypted_with_a_wrong_key_or_address_is_a_key_error():
    adv = make_adv(service_data={0x181E: ENCRYPTED})
    with pytest.raises(BLEKeyError, match="integrity"):
        decode_frame(ADDRESS, adv, bytes.fromhex("814aac74c4f17b6c1581e1ab87816b99"))
    with pytest.raises(BLEKeyError, match="integrity"):
        decode_frame("A4:C1:38:8D:18:B2", adv, KEY)  # the test's "wrong device" address
    with pytest.raises(BLEKeyError, match="no key"):
        decode_frame(ADDRESS, adv)


def test_unknown_object_ids_are_skipped_as_their_length_is_known():
    # 0x7F is no v1 object; the humidity after it still counts (v2 would have to stop).
    assert dict(v1("037F01020303BF13").values) == {"humidity": 50.55}


@pytest.mark.parametrize(
    "hex_data",
    [
        "2302C4",  # cut short
        "0102",  # length 1: an object id and no value
        "00",  # length 0
        "4402C409FF",  # a 3-byte "float"
        "6302C409",  # format 3 (string) for a number
    ],
)
def test_malformed_objects_are_refused(hex_data: str):
    with pytest.raises(BLEDecodeError, match="bthome_v1"):
        v1(hex_data)


def test_encrypted_too_short_is_malformed():
    with pytest.raises(BLEDecodeError, match="bthome_v1"):
        decode_frame(ADDRESS, make_adv(service_data={0x181E: ENCRYPTED[-8:]}), KEY)


def sealed_v1(counter: int) -> bytes:
    """The reference vector's plaintext sealed again under its published key with another
    counter, as the v1 nonce says (MAC, 1E 18, counter; additional data 0x11)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    cipher = AESCCM(KEY, tag_length=4)
    mac = bytes.fromhex(ADDRESS.replace(":", ""))
    plain = cipher.decrypt(mac + b"\x1e\x18" + ENCRYPTED[-8:-4], ENCRYPTED[:-8] + ENCRYPTED[-4:],
                           b"\x11")  # fmt: skip
    count = counter.to_bytes(4, "little")
    sealed = cipher.encrypt(mac + b"\x1e\x18" + count, plain, b"\x11")
    return sealed[:-4] + count + sealed[-4:]


def test_replayed_frames_are_refused_by_the_device_layer():
    from agent.config.ble import BleDeviceConfig
    from agent.sensing.ble.devices import DeviceLayer

    now = [1000.0]
    latest: dict = {}
    config = BleDeviceConfig(name="lab", address=ADDRESS, interval=1.0, format="bthome_v1",
                             key=KEY.hex())  # fmt: skip
    layer = DeviceLayer([config], latest, clock=lambda: now[0])

    def hear(frame: bytes) -> list:
        now[0] += 2.0
        latest[ADDRESS] = (make_adv(service_data={0x181E: frame}), now[0])
        return layer.tick()[0]

    original = int.from_bytes(ENCRYPTED[-8:-4], "little")
    assert [r.values for r in hear(sealed_v1(original + 1))] == [
        {"temperature": 25.06, "humidity": 50.55}
    ]
    assert hear(ENCRYPTED) == []  # authentic, but its counter is older: a replay
    assert layer.counts()["lab"] == {"readings": 1, "replays": 1}
