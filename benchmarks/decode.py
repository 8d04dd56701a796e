"""Decode cost: µs of CPU per I2C reading cycle, and per BLE advertisement.

I2C: each device of the profile reads its simulated chip (drivers/sim) through the simulated
bus, on a virtual clock, so conversion times pass without waiting and what is timed is the
driver's work (transfers, CRC checks, conversion, compensation) plus the simulated chip's. A
cycle is one compensate() and read(), as the agent's runner does every interval; the time
spent inside the simulated chip is given beside it (it stands in for the hardware).

BLE: benchmarks.ble_decode_timing times decode() on real advertisements of
each format; when the decoders are not in this checkout the figure says "not available".
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Params, Result, figure, load_toml, profile_path
from drivers import DRIVERS, DriverError
from drivers.sim.bus import SimBus, VirtualClock
from drivers.sim.room import SIMULATED_CHIPS, RoomModel

# Fresh values a sibling would give a driver that takes compensation.
COMPENSATION = {"temperature": 21.0, "humidity": 45.0, "pressure": 1013.0}


def i2c_cycle(device: dict[str, Any], cycles: int) -> dict[str, float]:
    name = device["driver"]
    clock = VirtualClock()
    room = RoomModel(seed=1, clock=clock)
    bus = SimBus(clock=clock)
    driver_cls = DRIVERS[name]
    address = device.get("address", driver_cls.default_address)
    bus.attach(address, SIMULATED_CHIPS[name](room, device.get("options", {})))
    kwargs: dict[str, Any] = dict(device.get("options", {}))
    if name == "sgp40":
        kwargs["clock"] = clock  # its algorithm is fed on a clock of its own
    driver = driver_cls(bus, address, sleep=clock.sleep, **kwargs)
    driver.open()
    interval = float(device.get("interval", 5))
    wanted = {q: v for q, v in COMPENSATION.items() if q in driver_cls.compensation}
    for _ in range(5):  # settle: a light sensor adjusts its gain over its first readings
        clock.sleep(interval)
        with contextlib.suppress(DriverError):
            driver.read()
    # The simulated chip's own share, timed around its read and write.
    chip = bus.chips[address]
    in_chip = [0.0]

    def timed(method: Any) -> Any:
        def call(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return method(*args)
            finally:
                in_chip[0] += time.perf_counter() - t

        return call

    chip.read, chip.write = timed(chip.read), timed(chip.write)  # type: ignore[method-assign]
    spent = 0.0
    transfers = errors = 0
    for i in range(cycles):
        clock.sleep(interval)
        bus.log.clear()
        start = time.perf_counter()
        try:
            driver.compensate(wanted)
            driver.read()
        except DriverError:  # counted: the runner spends the same and retries next interval
            errors += 1
        spent += time.perf_counter() - start
        transfers = len(bus.log)
        if i % 500 == 0:  # the clock logs every sleep; keep it short
            clock.sleeps.clear()
    driver.close()
    return {
        "us_per_cycle": round(spent / cycles * 1e6, 1),
        "sim_chip_us": round(in_chip[0] / cycles * 1e6, 1),
        "transfers_per_cycle": transfers,
        "failed_reads": errors,
    }


def ble(number: int, repeat: int) -> dict[str, Any]:
    try:
        from benchmarks.ble_decode_timing import measure
    except ImportError as e:
        return {"available": False, "reason": f"BLE decoders not in this checkout ({e})"}
    timed = measure(number=number, repeat=repeat)
    # The baseline of the same run: the first case, a plain BTHome temperature and humidity.
    baseline = timed[0][1]
    return {"available": True, "baseline": timed[0][0],
            "us_per_advertisement": {name: round(us, 2) for name, us in timed},
            "ratio_to_baseline": {name: round(us / baseline, 2) for name, us in timed}}  # fmt: skip


def run(params: Params, workdir: Path) -> Result:
    profile = profile_path(params)
    devices = [d for d in load_toml(profile).get("devices", []) if d["driver"] in SIMULATED_CHIPS]
    out: Result = {"profile": profile.name, "i2c": {}}
    figures = []
    for device in devices:
        r = i2c_cycle(device, params["i2c_cycles"])
        out["i2c"][f"{device['name']} ({device['driver']})"] = r
        figures.append(figure(
            f"I2C reading cycle: {device['name']} ({device['driver']}), {r['transfers_per_cycle']}"
            " transfers", f"{r['us_per_cycle']:.1f} µs",
            f"of which in the simulated chip {r['sim_chip_us']:.1f} µs"))  # fmt: skip
    total = sum(r["us_per_cycle"] for r in out["i2c"].values())
    out["i2c_all_devices_us"] = round(total, 1)
    figures.append(figure(f"I2C: every device of {profile.name} once", f"{total:.1f} µs"))
    out["ble"] = ble(params["ble_number"], params["ble_repeat"])
    if out["ble"]["available"]:
        ratios = out["ble"]["ratio_to_baseline"]
        for name, us in out["ble"]["us_per_advertisement"].items():
            figures.append(figure(f"BLE advertisement: {name}", f"{us:.1f} µs",
                                  f"{ratios[name]:.2f} × {out['ble']['baseline']}"))  # fmt: skip
    else:
        figures.append(figure("BLE advertisement", "not available", out["ble"]["reason"]))
    out["figures"], out["targets"] = figures, []
    return out


BENCHMARK = Benchmark(
    name="decode",
    summary="µs per I2C reading cycle (simulated bus) and per BLE advertisement",
    sizes={
        "full": {"i2c_cycles": 5000, "ble_number": 20000, "ble_repeat": 7, "config": ""},
        "smoke": {"i2c_cycles": 20, "ble_number": 50, "ble_repeat": 1, "config": ""},
    },
    run=run,
)
