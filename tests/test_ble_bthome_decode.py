"""BTHome v2 decoder against the bthome.io specification.

Sources: bthome.io "BTHome v2 format" (home-assistant/bthome.io src/format.html): every
row's Example and Result column is a case below, prefixed with the device information byte
0x40 (unencrypted, regular, version 2); bthome.io "Encryption": its worked example (key,
MAC, counter, service data) is the encrypted case. Objects added to the spec after the
stored page (0x60-0x64, bthome.io PRs #55, #62, #68, #71) are built by hand from their
documented type and factor; the arithmetic is in the comments. Names and units are ours
(docs/ble.md): where BTHome sends lb, mm or mL, the expected value is converted by hand.
The cases at the end follow the page at 0cf388b (2026-04-30): 0x65 settings revision and the
0x3B command event, with the page's own examples, and Shelly's documented 0xFE hold.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from drivers.ble import BLEDecodeError, BLEKeyError, decode, decode_frame
from tests.ble_adv import make_adv

BTHOME = 0xFCD2
MAC = "54:48:E6:8F:80:A5"  # the MAC of bthome.io's encryption example
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")  # its key


def bthome(hex_data: str, key: bytes | None = None, address: str = MAC):
    return decode_frame(address, make_adv(service_data={BTHOME: bytes.fromhex(hex_data)}), key)


def values(hex_data: str) -> dict:
    frame = bthome(hex_data)
    assert frame is not None
    return dict(frame.values)


# (object bytes from the spec's Example column, expected {name: value})
SENSOR_EXAMPLES = [
    ("518756", {"acceleration": 22.151}),
    ("0161", {"battery": 97.0}),
    ("12E204", {"co2": 1250.0}),
    ("56E803", {"conductivity": 1000.0}),
    ("0960", {"count": 96}),
    ("3D0960", {"count": 24585}),
    ("3E2A2C0960", {"count": 1611213866}),
    ("59EA", {"count": -22}),
    ("5AEAEA", {"count": -5398}),
    ("5BEA0234EA", {"count": -365690134}),
    ("434E34", {"current": 13.39}),
    ("5D02EA", {"current": -5.63}),
    ("08CA06", {"dew_point": 17.38}),
    ("400C00", {"distance": 0.012}),  # 12 mm
    ("414E00", {"distance": 7.8}),
    ("424E3400", {"duration": 13.39}),
    ("4d12138a14", {"energy": 344593.17}),
    ("0A138A14", {"energy": 1346.067}),
    ("4B138A14", {"gas": 1346.067}),
    ("4C41018A01", {"gas": 25821.505}),
    ("528756", {"gyroscope": 22.151}),
    ("03BF13", {"humidity": 50.55}),
    ("2E23", {"humidity": 35.0}),
    ("05138A14", {"illuminance": 13460.67}),
    ("065E1F", {"mass": 80.3}),
    # 74.86 lb * 0.45359237 kg/lb = 33.9559248... kg
    ("073E1D", {"mass": 33.9559}),
    ("14020C", {"moisture": 30.74}),
    ("2F23", {"moisture": 35.0}),
    ("0D120C", {"pm2_5": 3090.0}),
    ("0E021C", {"pm10": 7170.0}),
    ("0B021B00", {"power": 69.14}),
    ("5C02FBFFFF", {"power": -12.78}),
    ("04138A01", {"pressure": 1008.83}),
    ("540C48656C6C6F20576F726C6421", {"raw": "48656c6c6f20576f726c6421"}),
    ("3F020C", {"rotation": 307.4}),
    ("444E34", {"speed": 133.9}),
    ("57EA", {"temperature": -22.0}),
    ("58EA", {"temperature": -7.7}),
    ("451101", {"temperature": 27.3}),
    ("02CA09", {"temperature": 25.06}),
    ("530C48656C6C6F20576F726C6421", {"text": "Hello World!"}),
    ("505d396164", {"timestamp": 1684093277}),  # 2023-05-14 19:41:17 UTC
    ("133301", {"tvoc": 307.0}),
    ("0C020C", {"voltage": 3.074}),
    ("4A020C", {"voltage": 307.4}),
    ("4E87562A01", {"volume": 19551.879}),
    ("478756", {"volume": 2215.1}),
    ("48DC87", {"volume": 34.78}),  # 34780 mL
    ("5587562A01", {"volume_storage": 19551.879}),
    ("49DC87", {"volume_flow_rate": 34.78}),
    ("4632", {"uv_index": 5.0}),
    ("4F87562A01", {"water": 19551.879}),
    ("5E9F8C", {"direction": 359.99}),
    # The page showed 4000 (factor 1); bthome.io PR #58 (May 2025) made the factor 0.1.
    ("5FA00F", {"precipitation": 400.0}),
    # Later additions, by hand: uint8 channel 3; uint16 0x03E8 = 1000 rpm;
    # sint32 0x000F4240 = 1000000 * 1e-6 = 1.0 m/s, 0xFFF0BDC0 = -1000000 -> -1.0 m/s;
    # sint32 0x0012D687 = 1234567 * 1e-6 = 1.234567 m/s²; uint8 light level 1 = twilight.
    ("6003", {"channel": 3}),
    ("61E803", {"rotational_speed": 1000.0}),
    ("6240420F00", {"speed": 1.0}),
    ("62C0BDF0FF", {"speed": -1.0}),
    ("6387D61200", {"acceleration": 1.234567}),
    ("6401", {"light_level": 1}),
    # Device information table.
    ("F00100", {"device_type_id": 1}),
    ("F100010204", {"firmware_version": "4.2.1.0"}),
    ("F2000106", {"firmware_version": "6.1.0"}),
]


@pytest.mark.parametrize(("objects", "expected"), SENSOR_EXAMPLES)
def test_spec_example(objects, expected):
    assert values("40" + objects) == expected


def test_example_types():
    # Counts and ids are ints, measurements floats, text and raw strings.
    assert type(values("400960")["count"]) is int
    assert type(values("400161")["battery"]) is float
    assert type(values("4002CA09")["temperature"]) is float


BINARY = {
    0x0F: "generic_boolean", 0x10: "power_on", 0x11: "opening", 0x15: "battery_low",
    0x16: "battery_charging", 0x17: "carbon_monoxide", 0x18: "cold", 0x19: "connectivity",
    0x1A: "door", 0x1B: "garage_door", 0x1C: "gas_detected", 0x1D: "heat", 0x1E: "light",
    0x1F: "unlocked", 0x20: "wet", 0x21: "motion", 0x22: "moving", 0x23: "occupancy",
    0x24: "plug", 0x25: "presence", 0x26: "problem", 0x27: "running", 0x28: "safety",
    0x29: "smoke", 0x2A: "sound", 0x2B: "tamper", 0x2C: "vibration", 0x2D: "window",
}  # fmt: skip


@pytest.mark.parametrize(("object_id", "name"), sorted(BINARY.items()))
def test_binary_sensors(object_id, name):
    # "Binary sensor data should always be an uint8 of a single byte ... 1 for on, 0 for off."
    assert values(f"40{object_id:02x}01") == {name: True}
    assert values(f"40{object_id:02x}00") == {name: False}


def test_every_binary_object_of_the_spec_is_covered():
    assert set(BINARY) == set(range(0x0F, 0x12)) | set(range(0x15, 0x2E))


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("01", "press"),
        ("02", "double_press"),
        ("03", "triple_press"),
        ("04", "long_press"),
        ("05", "long_double_press"),
        ("06", "long_triple_press"),
        ("80", "hold_press"),
    ],
)
def test_button_events(event, name):
    frame = bthome("403A" + event)
    assert dict(frame.values) == {"button": name}
    assert frame.events == {"button"}


def test_button_none_event_reports_nothing_but_keeps_the_numbering():
    # bthome.io: "3A003A01 will send no event for the first button, and press for the second".
    frame = bthome("403A003A01")
    assert dict(frame.values) == {"button_2": "press"}
    assert frame.events == {"button_2"}
    assert values("403A00") == {}


def test_dimmer_events():
    assert values("403C0103") == {"dimmer": "rotate_left", "dimmer_steps": 3}
    frame = bthome("403C020A")
    assert dict(frame.values) == {"dimmer": "rotate_right", "dimmer_steps": 10}
    assert frame.events == {"dimmer", "dimmer_steps"}
    assert values("403C0000") == {}


def test_unknown_event_id_is_skipped_and_parsing_goes_on():
    # Event 0x7F is not in the table; the button object is one byte long whatever the event.
    assert values("403A7F02CA09") == {"temperature": 25.06}


def test_bthome_io_first_example():
    # bthome.io: service data D2FC 40 02C409 03BF13 -> 25.00 °C, 50.55 %.
    frame = bthome("4002C40903BF13")
    assert dict(frame.values) == {"temperature": 25.0, "humidity": 50.55}
    assert (frame.format, frame.encrypted, frame.packet_id, frame.counter) == (
        "bthome", False, None, None,
    )  # fmt: skip
    assert not frame.trigger_based


def test_packet_id_is_not_a_value():
    frame = bthome("40000902CA09")  # packet id 9 (spec example 0009), then a temperature
    assert frame.packet_id == 9
    assert dict(frame.values) == {"temperature": 25.06}


def test_repeated_objects_are_numbered_in_order():
    # bthome.io "Multiple measurements of the same type": temperature, temperature_2, ...
    # 0x02 CA09 = 25.06, 0x02 C409 = 25.00, 0x45 1101 = 27.3 (same name, other id).
    assert values("4002CA0902C409451101") == {
        "temperature": 25.06,
        "temperature_2": 25.0,
        "temperature_3": 27.3,
    }


def test_several_objects():
    # 01 61: 97 %, 02 CA09: 25.06 °C, 03 BF13: 50.55 %, 0C 020C: 3.074 V, 21 01: motion
    assert values("40016102CA0903BF130C020C2101") == {
        "battery": 97.0,
        "temperature": 25.06,
        "humidity": 50.55,
        "voltage": 3.074,
        "motion": True,
    }


def test_unknown_object_id_stops_parsing():
    # 0xFE is no object: its length is unknown, so the humidity after it cannot be read.
    assert values("4002CA09FE010203BF13") == {"temperature": 25.06}
    assert values("40FE02CA09") == {}


def test_trigger_based_flag():
    frame = bthome("443A01")  # 0x44 = version 2, bit 2 set
    assert frame.trigger_based
    assert dict(frame.values) == {"button": "press"}


@pytest.mark.parametrize(
    "data",
    [
        "",  # no device information byte
        "4002CA",  # temperature needs 2 bytes, 1 left
        "4004138A",  # pressure needs 3 bytes, 2 left
        "4053",  # text without its length byte
        "40530C4865",  # text announces 12 bytes, 2 follow
        "4003",  # id with no value at all
        "2002CA09",  # device information says version 1
        "6002CA09",  # version 3
        "4053 02 C328".replace(" ", ""),  # text that is not UTF-8
    ],
)
def test_malformed_raises(data):
    with pytest.raises(BLEDecodeError, match="bthome"):
        bthome(data)


# bthome.io "Encryption": key 231d...b932, MAC 5448E68F80A5, counter 0x33221100 = 1122867,
# plaintext 02CA09 03BF13; service data D2FC 41 E445F3C9962B 33221100 6C7C4519.
ENCRYPTED = "41e445f3c9962b332211006c7c4519"


def test_encryption_example():
    frame = bthome(ENCRYPTED, KEY)
    assert dict(frame.values) == {"temperature": 25.06, "humidity": 50.55}
    assert frame.encrypted
    assert frame.counter == 1122867
    assert frame.counter_bits == 32
    assert decode(MAC, make_adv(service_data={BTHOME: bytes.fromhex(ENCRYPTED)}), KEY) == {
        "temperature": 25.06,
        "humidity": 50.55,
    }


def test_encrypted_without_key():
    with pytest.raises(BLEKeyError, match="no key"):
        bthome(ENCRYPTED)


def test_encrypted_with_wrong_key():
    with pytest.raises(BLEKeyError, match="integrity"):
        bthome(ENCRYPTED, bytes(16))


def test_encrypted_from_another_mac_fails():
    # The MAC is part of the nonce: a copied advertisement from another address is refused.
    with pytest.raises(BLEKeyError, match="integrity"):
        bthome(ENCRYPTED, KEY, address="54:48:E6:8F:80:A6")


@pytest.mark.parametrize("index", range(1, 15))
def test_any_altered_byte_fails_the_mic(index):
    data = bytearray(bytes.fromhex(ENCRYPTED))
    data[index] ^= 0x01
    with pytest.raises(BLEKeyError):
        bthome(data.hex(), KEY)


def test_encrypted_needs_a_mac_address():
    # macOS gives bleak a UUID instead of the MAC: decryption cannot build its nonce.
    with pytest.raises(BLEKeyError, match="not a MAC"):
        bthome(ENCRYPTED, KEY, address="8A1C3E2F-5B7D-4C2A-9E1F-0123456789AB")


def test_encrypted_too_short():
    with pytest.raises(BLEDecodeError, match="counter and MIC"):
        bthome("41332211006c7c45", KEY)


def test_key_of_wrong_length():
    with pytest.raises(BLEKeyError, match="16 bytes"):
        bthome(ENCRYPTED, bytes(15))


def test_encrypted_with_packet_id_and_event():
    # Built with cryptography's AES-CCM (not ours) per bthome.io: nonce = MAC + D2FC + 0x45
    # (version 2, trigger based, encrypted) + counter 2 as little-endian 02000000.
    plain = bytes.fromhex("00073A01")  # packet id 7, button press
    nonce = bytes.fromhex("5448E68F80A5D2FC4502000000")
    sealed = AESCCM(KEY, tag_length=4).encrypt(nonce, plain, None)
    data = bytes.fromhex("45") + sealed[:-4] + bytes.fromhex("02000000") + sealed[-4:]
    frame = bthome(data.hex(), KEY)
    assert (frame.packet_id, frame.counter, frame.encrypted, frame.trigger_based) == (
        7, 2, True, True,
    )  # fmt: skip
    assert dict(frame.values) == {"button": "press"}
    assert frame.events == {"button"}


def test_plain_advertisement_with_a_key_is_decoded_and_marked_plain():
    # decode() cannot know the device is configured with a key: the frame says it was not
    # encrypted, and the per-device layer refuses it.
    frame = bthome("4002CA09", KEY)
    assert not frame.encrypted
    assert dict(frame.values) == {"temperature": 25.06}


def test_mac_included_in_the_payload():
    # Device information bit 1 (bthome-ble's "mac included"): the MAC follows, least
    # significant byte first, and is the nonce's MAC whatever address the scanner saw.
    # Sealed with cryptography's AES-CCM: nonce = 5448E68F80A5 D2FC 43 01000000.
    plain = bytes.fromhex("02CA09")
    nonce = bytes.fromhex("5448E68F80A5D2FC4301000000")
    sealed = AESCCM(KEY, tag_length=4).encrypt(nonce, plain, None)
    data = "43A5808FE64854" + sealed[:-4].hex() + "01000000" + sealed[-4:].hex()
    frame = bthome(data, KEY, address="7A:11:22:33:44:55")  # a random address
    assert dict(frame.values) == {"temperature": 25.06}
    assert frame.counter == 1
    # unencrypted, the MAC is skipped
    assert values("42A5808FE6485402CA09") == {"temperature": 25.06}
    with pytest.raises(BLEDecodeError, match="MAC"):
        bthome("42A5808FE648")


# bthome.io src/format.html at 0cf388b (2026-04-30): 0x65 settings revision (PR #73),
# example 6503 -> 3; 0x3B command (PR #74/#75): argument length (low 5 bits), opcode,
# arguments; examples 3B0000 off, 3B0001 on, 3B0002 toggle, 3B010305 step up 5 steps,
# 3B010405 step down 5 steps.
def test_settings_revision_does_not_stop_decoding():
    assert values("40650303BF13") == {"settings_revision": 3, "humidity": 50.55}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ("3B0000", {"command": "off"}),
        ("3B0001", {"command": "on"}),
        ("3B0002", {"command": "toggle"}),
        ("3B010305", {"command": "step_up", "command_steps": 5}),
        ("3B010405", {"command": "step_down", "command_steps": 5}),
    ],
)
def test_command_examples(objects, expected):
    frame = bthome("40" + objects)
    assert dict(frame.values) == expected
    assert frame.events == set(expected)


def test_a_command_does_not_stop_decoding_and_an_unknown_opcode_is_skipped():
    # Opcode 0x7F with 2 argument bytes (vendor-specific): skipped by its length byte; the
    # command after it and the humidity still read.
    assert values("403B027F01023B000103BF13") == {"command_2": "on", "humidity": 50.55}


def test_a_command_cut_short_is_malformed():
    with pytest.raises(BLEDecodeError, match="bthome"):
        bthome("403B0203")
    with pytest.raises(BLEDecodeError, match="bthome"):
        bthome("403B")


def test_shelly_hold_0xfe_is_a_hold_event():
    # Shelly BLU Button docs (shelly-api-docs.shelly.cloud docs-ble, "Button press events"):
    # 0xFE "button hold", example 0x3AFE; reported as the spec's hold_press (0x80).
    frame = bthome("40000101643AFE")
    assert dict(frame.values) == {"battery": 100.0, "button": "hold_press"}
    assert frame.events == {"button"}
    assert dict(bthome("403A80").values) == {"button": "hold_press"}
