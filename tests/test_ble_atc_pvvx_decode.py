"""ATC1441 and pvvx custom-firmware formats (service data 0x181A) against the authors' layouts.

Sources: pvvx/ATC_MiThermometer README "Bluetooth Advertising Formats" and src/custom_beacon.h
(adv_custom_t, adv_atc1441_t, adv_cust_enc_t, adv_atc_enc_t; nonce and additional data 0x11
from custom_beacon.c); the sample advertisements of the authors' own decoder,
python-interface/atc_mi_interface/atc_mi_format_test.py (MAC A4:C1:38:AA:BB:CC, bindkey
"aa" * 16), whose values are worked out by hand from the layouts below. bleak gives the
service data after the UUID, so the AD length, type and UUID (e.g. "12 16 1a 18") of each
sample are left off.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from drivers.ble import BLEKeyError, decode_frame
from tests.ble_adv import make_adv

MAC = "A4:C1:38:AA:BB:CC"
KEY = bytes.fromhex("aa" * 16)


def env(hex_data: str, key: bytes | None = None, address: str = MAC):
    return decode_frame(address, make_adv(service_data={0x181A: bytes.fromhex(hex_data)}), key)


def test_pvvx_custom_sample():
    # MAC cc bb aa 38 c1 a4 (LSB first); 6c07 = 1900 -> 19.00 °C; fa13 = 5114 -> 51.14 %;
    # d60a = 2774 mV; 0x52 = 82 %; counter 9; flags 0x0f: reed switch (bit 0) and trigger
    # output (bit 1) set.
    frame = env("ccbbaa38c1a46c07fa13d60a52090f")
    assert frame.format == "pvvx"
    assert frame.packet_id == 9
    assert not frame.encrypted and frame.counter is None
    assert dict(frame.values) == {
        "temperature": 19.0,
        "humidity": 51.14,
        "voltage": 2.774,
        "battery": 82.0,
        "reed_switch": True,
        "trigger_output": True,
    }


def test_fourteen_bytes_match_no_layout_and_are_refused():
    # Issue 24: 14 bytes are neither atc1441's 13 nor pvvx's 15; the pvvx README documents no
    # 14-byte layout, so these bytes (a pvvx frame with its flags byte cut off) give nothing.
    assert env("ccbbaa38c1a42efb8813b80b64ff") is None
    assert env("ccbbaa38c1a46c07fa13d60a52090f"[:-2]) is None


def test_atc1441_sample():
    # MAC a4 c1 38 aa bb cc (MSB first); 00ce = 206 -> 20.6 °C (big-endian); 0x33 = 51 %;
    # 0x43 = 67 %; 0a6e = 2670 mV (big-endian); counter 0xc3 = 195.
    frame = env("a4c138aabbcc00ce33430a6ec3")
    assert frame.format == "atc1441"
    assert frame.packet_id == 195
    assert dict(frame.values) == {
        "temperature": 20.6,
        "humidity": 51.0,
        "battery": 67.0,
        "voltage": 2.67,
    }


def test_atc1441_below_zero():
    # ffc9 = -55 -> -5.5 °C.
    frame = env("a4c138aabbccffc9500a0bb801")
    assert dict(frame.values) == {
        "temperature": -5.5,
        "humidity": 80.0,
        "battery": 10.0,
        "voltage": 3.0,
    }


PVVX_ENCRYPTED = "bd86c53ffab900c1515859"  # sample "0e 16 1a 18 bd 86 ..."
ATC_ENCRYPTED = "bde9b75db856f303"  # sample "0b 16 1a 18 bd e9 ..."


def test_pvvx_encrypted_sample():
    # Plaintext (adv_cust_data_t): 6c07 = 19.00 °C, f913 = 5113 -> 51.13 %, 0x51 = 81 %,
    # flags 0x0f. Counter 0xbd = 189, also the nonce's last byte.
    frame = env(PVVX_ENCRYPTED, KEY)
    assert frame.format == "pvvx"
    assert (frame.encrypted, frame.counter, frame.counter_bits, frame.packet_id) == (
        True, 189, 8, 189,
    )  # fmt: skip
    assert dict(frame.values) == {
        "temperature": 19.0,
        "humidity": 51.13,
        "battery": 81.0,
        "reed_switch": True,
        "trigger_output": True,
    }


def test_atc1441_encrypted_sample():
    # Plaintext (adv_atc_data_t): 0x76 = 118 -> 118 / 2 - 40 = 19.0 °C; 0x32 = 50 -> 25.0 %;
    # 0xd6 = 0x80 | 86: trigger output on, battery 86 %.
    frame = env(ATC_ENCRYPTED, KEY)
    assert frame.format == "atc1441"
    assert (frame.encrypted, frame.counter, frame.counter_bits) == (True, 189, 8)
    assert dict(frame.values) == {
        "temperature": 19.0,
        "humidity": 25.0,
        "battery": 86.0,
        "trigger_output": True,
    }


def test_atc1441_encrypted_extremes_built_by_hand():
    # custom_beacon.c: temp byte = t/0.5 + 80, so -40.0 °C is 0 and 87.0 °C is 254; humidity
    # byte = RH / 0.5. Sealed with cryptography's AES-CCM: nonce = MAC LSB first + the AD
    # header as sent (0b 16 1a 18, counter 0x01), additional data 0x11.
    nonce = bytes.fromhex("ccbbaa38c1a40b161a1801")
    for plain, expected in (
        ("000000", {"temperature": -40.0, "humidity": 0.0, "battery": 0.0}),
        ("fec864", {"temperature": 87.0, "humidity": 100.0, "battery": 100.0}),
    ):
        sealed = AESCCM(KEY, tag_length=4).encrypt(nonce, bytes.fromhex(plain), b"\x11")
        frame = env("01" + sealed.hex(), KEY)
        assert dict(frame.values) == {**expected, "trigger_output": False}


@pytest.mark.parametrize("data", [PVVX_ENCRYPTED, ATC_ENCRYPTED])
def test_encrypted_without_key(data):
    with pytest.raises(BLEKeyError, match="no key"):
        env(data)


@pytest.mark.parametrize("data", [PVVX_ENCRYPTED, ATC_ENCRYPTED])
def test_encrypted_with_wrong_key(data):
    with pytest.raises(BLEKeyError, match="integrity"):
        env(data, bytes.fromhex("ab" * 16))


@pytest.mark.parametrize("data", [PVVX_ENCRYPTED, ATC_ENCRYPTED])
def test_encrypted_from_another_device(data):
    with pytest.raises(BLEKeyError, match="integrity"):
        env(data, KEY, address="A4:C1:38:AA:BB:CD")


def test_encrypted_needs_a_mac_address():
    with pytest.raises(BLEKeyError, match="not a MAC"):
        env(PVVX_ENCRYPTED, KEY, address="not-a-mac")


def test_altered_counter_fails():
    # The counter is in the nonce: replaying the frame under another counter is refused.
    with pytest.raises(BLEKeyError):
        env("be" + PVVX_ENCRYPTED[2:], KEY)


@pytest.mark.parametrize("length", [0, 1, 7, 9, 10, 12, 14, 16, 19, 20])
def test_other_lengths_are_not_these_formats(length):
    # The firmware authors tell formats apart by length; 0x181A is also the SIG's
    # Environmental Sensing service, so other lengths are someone else's data.
    assert env("00" * length) is None


def test_plain_formats_decode_whatever_the_key():
    assert env("a4c138aabbcc00ce33430a6ec3", KEY).encrypted is False
