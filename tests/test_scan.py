"""scan-i2c against a simulated bus: probing like i2cdetect, naming chips, flagging the config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.config.schema import DeviceConfig
from agent.tools.scan_i2c import grid, report, scan
from drivers.sim import RegisterChip, SimBus
from drivers.sim.bme280 import SimBME280
from drivers.sim.bus import Transfer


class Eeprom(RegisterChip):
    """Something we have no driver for, in the range where i2cdetect reads instead of writes."""


def device(name: str, driver: str, address: int) -> DeviceConfig:
    return DeviceConfig(name=name, driver=driver, interval=5.0, address=address)


def test_probes_like_i2cdetect_and_names_what_it_knows() -> None:
    bus = SimBus({0x76: SimBME280(), 0x77: SimBME280(chip_id=0x58), 0x50: Eeprom()})
    findings = {f.address: f for f in scan(bus)}
    assert sorted(findings) == [0x50, 0x76, 0x77]
    assert findings[0x76].identified == (("bme280", "BME280 (chip id 0x60)"),)
    assert findings[0x77].identified == (("bmp280", "BMP280 (chip id 0x58)"),)
    assert findings[0x50].identified == () and findings[0x50].candidates == ()
    # 0x50-0x5F is probed with a read (a quick write can corrupt some EEPROMs), the rest with
    # a zero-length write; addresses 0x00-0x02 and 0x78-0x7F are never touched.
    assert Transfer(0x50, "read", b"\x00") in bus.log
    assert Transfer(0x20, "write", b"") in bus.log
    touched = {t.address for t in bus.log}
    assert min(touched) == 0x03 and max(touched) == 0x77


def test_the_grid_is_i2cdetects() -> None:
    bus = SimBus({0x76: SimBME280()})
    rows = grid(scan(bus)).splitlines()
    assert rows[0].split() == [f"{c:x}" for c in range(16)]
    assert rows[1] == "00:          " + " ".join(["--"] * 13)
    assert rows[8] == "70: -- -- -- -- -- -- 76 --"  # 0x78-0x7F are not probed: blank


def test_flags_missing_and_wrong_chips_against_the_config() -> None:
    bus = SimBus({0x76: SimBME280(chip_id=0x58)})
    expected = [device("climate", "bme280", 0x76), device("light", "bme280", 0x77)]
    findings = {f.address: f for f in scan(bus, expected)}
    assert findings[0x76].problem == "WRONG CHIP: config expects bme280"
    assert findings[0x77].problem == "MISSING: nothing answers"
    text = report(1, list(findings.values()))
    assert "BMP280 (chip id 0x58)" in text and "climate (bme280)" in text
    assert "MISSING" in text


def test_a_chip_that_matches_the_config_is_ok() -> None:
    bus = SimBus({0x76: SimBME280()})
    [finding] = scan(bus, [device("climate", "bme280", 0x76)])
    assert finding.problem is None
    assert report(1, [finding]).splitlines()[-1].rstrip().endswith("ok")


def test_an_empty_bus_says_what_to_check() -> None:
    assert "check power, SDA/SCL wiring and pull-ups" in report(1, scan(SimBus()))


# The installer's commands, end to end on the demo room's simulated chips ----------------------

REPO = Path(__file__).resolve().parent.parent
DEMO = str(REPO / "firmware_configs" / "demo.toml")


def roomagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)  # fmt: skip


def test_scan_i2c_cli_finds_every_device_of_the_demo_room() -> None:
    result = roomagent("scan-i2c", "--config", DEMO)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "  0x" in line}
    assert "BME280 (chip id 0x60)" in lines["0x76"] and lines["0x76"].endswith("ok")
    assert "SCD4x serial" in lines["0x62"] and "co2 (scd4x)" in lines["0x62"]
    assert "SGP40 serial" in lines["0x59"]  # it refuses i2cdetect's probe, but is found
    assert "VEML7700 id 0xc481" in lines["0x10"]
    assert all(line.rstrip().endswith("ok") for line in lines.values())


def test_read_cli_prints_one_reading_with_units() -> None:
    result = roomagent("read", "climate", "--config", DEMO)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("climate (bme280, bus 1):")
    assert " °C" in out and " hPa" in out and " %" in out
    as_json = roomagent("read", "lighting-circuit", "--config", DEMO, "--json")
    assert as_json.returncode == 0, as_json.stderr
    values = json.loads(as_json.stdout)
    assert set(values) == {"voltage", "current", "power"}
    # Units as the INA219's datasheet gives its registers' quantities.
    assert {q: v["unit"] for q, v in values.items()} == {"voltage": "V", "current": "A",
                                                         "power": "W"}  # fmt: skip
    assert all(isinstance(v["value"], (int, float)) for v in values.values())


def test_read_json_of_a_learning_voc_sensor_says_so() -> None:
    result = roomagent("read", "voc", "--config", DEMO, "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == {}
    assert "still learning" in result.stderr


def test_read_cli_names_the_devices_when_one_is_unknown() -> None:
    result = roomagent("read", "clmate", "--config", DEMO)
    assert result.returncode == 2
    assert "no device 'clmate'" in result.stderr and "climate, co2, voc" in result.stderr
    assert "did you mean 'climate'?" in result.stderr
