"""Cost of decoding one advertisement, per format: `python -m benchmarks.ble_decode_timing`
(the decode benchmark, benchmarks/decode.py, reports it as ratios).

Each case is a real advertisement of its format (the spec examples the tests use) in a bleak
AdvertisementData; the figure is the best of 7 runs of 20 000 calls of decode(), in µs per
call, so it is the decoder's cost without scheduler noise.
"""

from __future__ import annotations

import functools
import timeit
from typing import Any, Optional

from drivers.ble import decode, uuid16

_MAC = "54:48:E6:8F:80:A5"
_PVVX_MAC = "A4:C1:38:AA:BB:CC"
_BTHOME_KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
_PVVX_KEY = bytes.fromhex("aa" * 16)
_XIAOMI_KEY = bytes.fromhex("e9ea895fac7cca6d30532432a516f3a8")  # ble_monitor's test vector
_RUUVI_E1 = "E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C884F"

# (name, address, {service uuid16: hex} or {}, {company: hex} or {}, key)
CASES: tuple[tuple[str, str, dict[int, str], dict[int, str], Optional[bytes]], ...] = (
    ("bthome (temperature, humidity)", _MAC, {0xFCD2: "4002C40903BF13"}, {}, None),
    ("bthome (6 objects)", _MAC, {0xFCD2: "400009016102CA0903BF130C020C2101"}, {}, None),
    ("bthome encrypted", _MAC, {0xFCD2: "41e445f3c9962b332211006c7c4519"}, {}, _BTHOME_KEY),
    ("ruuvi_v5", _MAC, {}, {0x0499: "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"}, None),
    ("atc1441", _PVVX_MAC, {0x181A: "a4c138aabbcc00ce33430a6ec3"}, {}, None),
    ("pvvx", _PVVX_MAC, {0x181A: "ccbbaa38c1a46c07fa13d60a52090f"}, {}, None),
    ("pvvx encrypted", _PVVX_MAC, {0x181A: "bd86c53ffab900c1515859"}, {}, _PVVX_KEY),
    ("atc1441 encrypted", _PVVX_MAC, {0x181A: "bde9b75db856f303"}, {}, _PVVX_KEY),
    ("ibeacon", _MAC, {}, {0x004C: "0215e2c56db5dffb48d2b060d0f5a71096e000010002c5"}, None),
    ("eddystone uid", _MAC, {0xFEAA: "00e70102030405060708090a0b0c0d0e0f100000"}, {}, None),
    ("eddystone url", _MAC, {0xFEAA: "101203676f6f2e676c2f53367a543650"}, {}, None),
    ("eddystone tlm", _MAC, {0xFEAA: "20000bb819000000006400000e10"}, {}, None),
    ("ruuvi_df6 (Ruuvi Air)", _MAC, {}, {0x0499: "06170C5668C79E007000C90501D9FFCD004C884F"}, None),
    ("ruuvi_e1 (Ruuvi Air)", _MAC, {}, {0x0499: _RUUVI_E1}, None),
    (
        "xiaomi (LYWSDCGQ, plain)",
        "58:2D:34:35:93:21",
        {0xFE95: "5020aa01da219335342d580d1004fe004802"},
        {},
        None,
    ),
    (
        "xiaomi encrypted (LYWSD03MMC)",
        "A4:C1:38:02:83:F4",
        {0xFE95: "58585b0550f4830238c1a495ef58763c26000097e2abb5"},
        {},
        _XIAOMI_KEY,
    ),
    ("bthome_v1 (temperature, humidity)", _MAC, {0x181C: "2302C4090303BF13"}, {}, None),
    (
        "bthome_v1 encrypted",
        _MAC,
        {0x181E: "fba435e4d3c312fb00112233 57d90a99".replace(" ", "")},
        {},
        _BTHOME_KEY,
    ),
    ("no supported format", _MAC, {0xFE2C: "5020aa01"}, {0x0006: "01092002"}, None),
)


def _advertisement(services: dict[int, str], companies: dict[int, str]) -> Any:
    from bleak.backends.scanner import AdvertisementData

    service_data = {uuid16(k): bytes.fromhex(v) for k, v in services.items()}
    known: dict[str, Any] = {
        "local_name": None,
        "manufacturer_data": {k: bytes.fromhex(v) for k, v in companies.items()},
        "service_data": service_data,
        "service_uuids": list(service_data),
        "tx_power": None,
        "rssi": -60,
        "platform_data": (),
    }
    fields: dict[str, Any] = {f: known.get(f) for f in AdvertisementData._fields}
    return AdvertisementData(**fields)


def measure(number: int = 20000, repeat: int = 7) -> list[tuple[str, float]]:
    results = []
    for name, address, services, companies, key in CASES:
        adv = _advertisement(services, companies)
        decode(address, adv, key)  # warm: first use imports cryptography, builds the cipher
        call = functools.partial(decode, address, adv, key)
        best = min(timeit.repeat(call, number=number, repeat=repeat))
        results.append((name, best / number * 1e6))
    return results


if __name__ == "__main__":
    import platform

    print(f"Python {platform.python_version()}, {platform.machine()}")
    for name, micros in measure():
        print(f"{name:32s} {micros:6.1f} µs")
