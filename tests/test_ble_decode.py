"""The decode entry point: dispatch, its error contract under random input, the names and
units it returns, and that it loads neither bleak nor cryptography until needed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble import FORMATS, BLEDecodeError, DecodedFrame, decode, decode_frame
from drivers.ble.bthome_objects import OBJECTS, Kind
from drivers.ble.units import UNITS, base_name, unit_of
from drivers.quantities import QUANTITIES
from tests.ble_adv import make_adv

MAC = "A4:C1:38:AA:BB:CC"
SERVICES = (0xFCD2, 0x181C, 0x181E, 0x181A, 0xFE95, 0xFEAA)
MANUFACTURERS = (0x0499, 0x004C)

# Random bytes, and random bytes behind each format's own header, so the fuzzing reaches
# past the first check of every decoder.
PREFIXES = {
    0xFCD2: [b"", b"\x40", b"\x41", b"\x42", b"\x43", b"\x44", b"\x45"],
    0x181C: [b"", b"\x02", b"\x23\x02", b"\x02\x3a", b"\x03\x3c"],
    0x181E: [b""],
    0x181A: [b""],
    # MiBeacon frame controls: plain v2/v3 with MAC and objects, v5 encrypted, v3 legacy
    # encrypted, capability included
    0xFE95: [
        b"",
        b"\x50\x20",
        b"\x50\x30",
        b"\x58\x58",
        b"\x58\x30",
        b"\x70\x30",
        b"\x48\x59",
    ],
    0xFEAA: [b"", b"\x00", b"\x10", b"\x10\x00", b"\x20", b"\x20\x00", b"\x20\x01"],
    0x0499: [b"", b"\x05", b"\x06", b"\xe1"],
    0x004C: [b"", b"\x02\x15"],
}


def check_contract(address: str, adv, key) -> None:
    try:
        frame = decode_frame(address, adv, key)
    except BLEDecodeError:
        return
    if frame is None:
        return
    assert isinstance(frame, DecodedFrame)
    assert frame.format
    for name, value in frame.values.items():
        assert unit_of(name) is not None, f"{frame.format} returned {name!r}, not in UNITS"
        assert isinstance(value, (bool, int, float, str))
    assert frame.events <= set(frame.values)


@settings(max_examples=400, deadline=None)
@given(
    source=st.sampled_from(SERVICES + MANUFACTURERS),
    prefix_index=st.integers(0, 7),
    body=st.binary(max_size=40),
    key=st.one_of(st.none(), st.binary(min_size=16, max_size=16), st.binary(max_size=20)),
    address=st.sampled_from([MAC, "54:48:E6:8F:80:A5", "8A1C3E2F-5B7D-4C2A-9E1F-0123456789AB"]),
)
def test_random_bytes_raise_only_the_documented_error(source, prefix_index, body, key, address):
    prefixes = PREFIXES[source]
    data = prefixes[prefix_index % len(prefixes)] + body
    if source in SERVICES:
        adv = make_adv(service_data={source: data})
    else:
        adv = make_adv(manufacturer_data={source: data})
    check_contract(address, adv, key)


@settings(max_examples=200, deadline=None)
@given(objects=st.lists(st.sampled_from(sorted(OBJECTS)), max_size=8), filler=st.binary())
def test_random_bthome_objects(objects, filler):
    # Known object ids with random values: every known id, in any order, cut anywhere.
    data = bytearray(b"\x40")
    for i, object_id in enumerate(objects):
        data.append(object_id)
        data += filler[i : i + 5]
    check_contract(MAC, make_adv(service_data={0xFCD2: bytes(data)}), None)


def test_every_bthome_name_has_a_unit():
    for object_id, spec in OBJECTS.items():
        if spec.kind is not Kind.PACKET_ID:
            assert spec.name in UNITS, f"object 0x{object_id:02x} {spec.name}"


def test_names_shared_with_the_i2c_drivers_have_the_same_unit():
    shared = set(UNITS) & set(QUANTITIES)
    assert {"temperature", "humidity", "pressure", "co2", "illuminance", "voltage"} <= shared
    for name in shared:
        assert UNITS[name] == QUANTITIES[name].unit.value, name


def test_numbered_names():
    assert base_name("temperature_2") == "temperature"
    assert base_name("dimmer_3_steps") == "dimmer_steps"
    assert base_name("pm2_5") == "pm2_5"
    assert unit_of("humidity_12") == "%"
    assert unit_of("no_such_name") is None


def test_decode_returns_a_plain_dict():
    adv = make_adv(service_data={0xFCD2: bytes.fromhex("4002CA09")})
    values = decode(MAC, adv)
    assert isinstance(values, dict)
    assert json.loads(json.dumps(values)) == {"temperature": 25.06}


def test_frame_values_are_read_only():
    frame = decode_frame(MAC, make_adv(service_data={0xFCD2: bytes.fromhex("4002CA09")}))
    assert isinstance(frame.values, Mapping)
    with pytest.raises(TypeError):
        frame.values["temperature"] = 0  # type: ignore[index]


def test_service_data_is_tried_before_manufacturer_data():
    # A pvvx thermometer that also sends an iBeacon: the measurement wins.
    adv = make_adv(
        service_data={0x181A: bytes.fromhex("ccbbaa38c1a46c07fa13d60a52090f")},
        manufacturer_data={0x004C: bytes.fromhex("0215" + "00" * 16 + "00010002c5")},
    )
    assert decode_frame(MAC, adv).format == "pvvx"
    assert decode_frame(MAC, adv, formats={"ibeacon"}).format == "ibeacon"


def test_formats_restrict_the_decoders():
    assert FORMATS == (
        "bthome", "bthome_v1", "atc_pvvx", "xiaomi", "eddystone", "ruuvi", "ibeacon"
    )  # fmt: skip
    adv = make_adv(service_data={0xFCD2: bytes.fromhex("4002CA09")})
    assert decode_frame(MAC, adv, formats={"ruuvi"}) is None
    assert decode_frame(MAC, adv, formats={"bthome"}).values == {"temperature": 25.06}


def test_unknown_service_and_company_are_ignored():
    adv = make_adv(
        service_data={
            0xFE2C: bytes.fromhex("5020aa01"),  # Google Fast Pair
            "0000abcd-1111-2222-3333-444455556666": b"x",
        },
        manufacturer_data={0x0006: b"\x01\x09\x20\x02", 0xFFFF: b""},
        local_name="LYWSD03MMC",
    )
    assert decode(MAC, adv) is None


def test_a_bad_advertisement_of_one_format_is_not_retried_as_another():
    # Truncated BTHome plus a valid iBeacon: the error is reported, not hidden.
    adv = make_adv(
        service_data={0xFCD2: bytes.fromhex("4002CA")},
        manufacturer_data={0x004C: bytes.fromhex("0215" + "00" * 16 + "00010002c5")},
    )
    with pytest.raises(BLEDecodeError, match="bthome"):
        decode(MAC, adv)


LAZY = """
import sys, types
import drivers.ble
from drivers.ble import decode
adv = types.SimpleNamespace(
    manufacturer_data={},
    service_data={"0000fcd2-0000-1000-8000-00805f9b34fb": bytes.fromhex(sys.argv[1])},
)
key = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
print(decode("54:48:E6:8F:80:A5", adv, key))
print("bleak" in sys.modules, "cryptography" in sys.modules)
"""


@pytest.mark.parametrize(
    ("data", "loaded"),
    [
        ("4002CA09", "False False"),
        # the bthome.io encryption example: decrypting is what loads cryptography
        ("41e445f3c9962b332211006c7c4519", "False True"),
    ],
)
def test_imports_are_lazy(data, loaded):
    out = subprocess.run(
        [sys.executable, "-c", LAZY, data], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == loaded
