"""`roomagent doctor`'s checks of what is wired to the Pi: I2C, each sensor chip, GPIO, Bluetooth.

The sensor check asks each chip who it is with its driver's identify() (scan-i2c's probe,
which leaves a chip the running agent uses as it was). Only a chip that answers but does not
identify itself is opened with its driver, to learn why: a garbled reply (checksum) or a chip
that is not the configured one. config.txt is read by agent.pi.bootconfig.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from agent.config.schema import Config, DeviceConfig
from agent.pi import header
from agent.pi.bootconfig import BT_OFF_OVERLAYS, BootConfig
from agent.tools.doctor_checks import SERVICE_USER, Host, Result, failed, info, passed
from drivers import DRIVERS, CRCError, DriverError

# Permissions -------------------------------------------------------------------------------


def service_can_use(path: Path, host: Host) -> Optional[tuple[str, str]]:
    """None when the service user can read and write the device `path`; else (why not, what
    to do), in words."""
    ids = host.service_ids()
    if ids is None:
        return (
            f"there is no {SERVICE_USER!r} user: the service is not installed",
            "install it: sudo scripts/install.sh --config <room>.toml (docs/installing.md)",
        )
    uid, gids = ids
    st = path.stat()
    if uid == 0:
        return None
    if st.st_uid == uid:
        allowed = st.st_mode & 0o600 == 0o600
    elif st.st_gid in gids:
        allowed = st.st_mode & 0o060 == 0o060
    else:
        allowed = st.st_mode & 0o006 == 0o006
    if allowed:
        return None
    user, group = _owner(st)
    why = (
        f"/dev/{path.name} is {user}:{group} mode {stat.S_IMODE(st.st_mode):04o}: the "
        f"{SERVICE_USER} user cannot read and write it"
    )
    if st.st_gid == 0 or st.st_mode & 0o060 != 0o060:
        # Raspberry Pi OS's udev rules (99-com.rules) give these devices to groups i2c and
        # gpio, mode 0660; without them the device is root's alone.
        return why, (
            f"give /dev/{path.name} to group i2c or gpio, mode 0660, with a udev rule "
            "(Raspberry Pi OS has one: /etc/udev/rules.d/99-com.rules)"
        )
    return why, (f"sudo usermod -aG {group} {SERVICE_USER}, then sudo systemctl restart roomagent")


def _owner(st: os.stat_result) -> tuple[str, str]:
    import grp
    import pwd

    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


# I2C ---------------------------------------------------------------------------------------


def buses_of(cfg: Config) -> list[int]:
    return sorted({d.bus for d in cfg.devices if isinstance(d.bus, int)})  # not Modbus lines


def check_i2c(bus: int, boot: BootConfig, host: Host) -> Result:
    name = f"i2c bus {bus}"
    dev = host.path(f"/dev/i2c-{bus}")
    switched_on = ""
    if bus == 1 and boot.path is not None:
        switched_on = "on" if boot.on("i2c_arm") else "off"
    if dev.exists():
        problem = service_can_use(dev, host)
        if problem:
            return failed(name, *problem)
        where = f"enabled in {boot.path}, " if switched_on == "on" else ""
        return passed(name, f"{where}/dev/i2c-{bus} present")
    if switched_on == "off":
        return failed(
            name,
            f"I2C is switched off in {boot.path}",
            "switch it on: sudo raspi-config nonint do_i2c 0, then sudo reboot",
        )
    if host.path(f"/sys/class/i2c-adapter/i2c-{bus}").exists():
        # The bus is there, but nothing makes /dev/i2c-N: i2c-dev is a module of its own
        # that device tree does not load.
        return failed(
            name,
            f"bus {bus} is on, but /dev/i2c-{bus} is missing (the i2c-dev module is not loaded)",
            "echo i2c-dev | sudo tee /etc/modules-load.d/i2c-dev.conf, then sudo reboot",
        )
    if switched_on == "on":
        return failed(
            name,
            f"I2C is switched on in {boot.path} but not active yet",
            "reboot the Pi (sudo reboot): config.txt is read only at start",
        )
    if bus == 1:
        return failed(
            name,
            f"/dev/i2c-{bus} does not exist and no config.txt was found",
            "switch I2C on: sudo raspi-config nonint do_i2c 0, then sudo reboot",
        )
    return failed(
        name,
        f"/dev/i2c-{bus} does not exist",
        "bus numbers other than 1 come from a dtoverlay in config.txt "
        "(e.g. i2c-gpio,bus=N): add it and reboot, or correct devices.bus",
    )


# Sensors -----------------------------------------------------------------------------------


def _address(d: DeviceConfig) -> int:
    return d.address if d.address is not None else DRIVERS[d.driver].default_address


def _pins_of(bus: int) -> str:
    sda_scl = header.I2C_BUS_PINS.get(bus)
    if sda_scl is None:
        return "SDA and SCL"
    sda, scl = (header.physical(g) for g in sda_scl)
    return f"SDA to pin {sda}, SCL to pin {scl}"


def check_sensor(d: DeviceConfig, open_bus: Callable[[int], Any]) -> Result:
    """Does the configured chip answer at its address, and is it the configured chip?"""
    assert isinstance(d.bus, int)  # meters: agent.tools.doctor_modbus
    from agent.sensing.bus_choice import NoBusError
    from agent.tools.scan_i2c import _can_identify, scan

    name = f"sensor {d.name}"
    address = _address(d)
    what = f"{d.driver} at 0x{address:02x} on bus {d.bus}"
    try:
        bus = open_bus(d.bus)
    except NoBusError:
        return info(
            name, f"{what}: not checked, /dev/i2c-{d.bus} cannot be opened (see 'i2c bus {d.bus}')"
        )
    cls = DRIVERS[d.driver]
    try:
        [finding] = scan(bus, [d], addresses=[address])
    except OSError as e:
        if e.errno == errno.EBUSY:
            return failed(
                name,
                f"{what}: the address is taken by a kernel driver",
                "remove the dtoverlay in config.txt that claims this address "
                "(e.g. i2c-rtc), then reboot",
            )
        return failed(
            name,
            f"{what}: the bus fails ({e.strerror or e})",
            "check SDA and SCL for a short to each other or to GND",
        )
    if not finding.answers:
        return failed(
            name,
            f"{what}: nothing answers{_elsewhere(d, bus)}",
            f"check the sensor's wires (3V3 to VIN, GND, {_pins_of(d.bus)}) and its address jumper",
        )
    mine = [desc for drv, desc in finding.identified if drv == d.driver]
    if mine:
        return passed(name, f"{what}: {mine[0]}")
    if finding.identified:
        other, desc = finding.identified[0]
        return failed(
            name,
            f"{what}: a different chip answers there, {desc}",
            f"fit a {d.driver} there, or if the {other} is right, set "
            f'driver = "{other}" for {d.name!r} in the config',
        )
    if not _can_identify(cls):
        return passed(
            name, f"{what}: answers (the chip has no id to check: the address is all that can be)"
        )
    return _open_to_learn_why(d, bus, name, what)


def _elsewhere(d: DeviceConfig, bus: Any) -> str:
    """A chip of the right kind at another of its addresses: the address jumper is set wrong."""
    from agent.tools.scan_i2c import identify

    cls = DRIVERS[d.driver]
    for other in cls.addresses:
        if other == _address(d):
            continue
        try:
            found = [desc for drv, desc in identify(bus, other)[0] if drv == d.driver]
        except OSError:
            continue
        if found:
            return (
                f"; but {found[0]} answers at 0x{other:02x}: set address = 0x{other:02x} "
                "in the config, or move the sensor's address jumper"
            )
    return ""


def _open_to_learn_why(d: DeviceConfig, bus: Any, name: str, what: str) -> Result:
    """The chip answered but did not say it is a d.driver: open it as the agent would, for
    the driver's own diagnosis. (A chip in that state is of no use to the agent either, so
    re-initialising it disturbs nothing that works.)"""
    driver = DRIVERS[d.driver](bus, d.address, **d.options)
    try:
        driver.open()
    except CRCError as e:
        return failed(
            name,
            f"{what}: answers, but its replies fail their checksum ({e})",
            "a noisy or loose connection: reseat the connectors, shorten the cable, "
            "check the pull-up resistors on SDA and SCL",
        )
    except DriverError as e:
        return failed(
            name,
            f"{what}: something answers, but not a {d.driver}: {e}",
            "check which sensor is fitted at this address (roomagent scan-i2c names what answers)",
        )
    except OSError as e:
        return failed(
            name,
            f"{what}: answers, then stops answering ({e.strerror or e})",
            "a loose connection or a weak supply: reseat the connectors, check 3V3",
        )
    with contextlib.suppress(OSError, DriverError):
        driver.close()
    return passed(name, f"{what}: answers and accepts its settings (it gives no id)")


# GPIO --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinUse:
    gpio: int
    what: str  # e.g. "relay 'heater'"


def pin_uses(cfg: Config) -> list[PinUse]:
    uses = [PinUse(r.pin, f"relay {r.name!r}") for r in cfg.control.relays]
    return uses + [PinUse(i.pin, f"input {i.name!r}") for i in cfg.control.inputs]


def pin_conflicts(cfg: Config, boot: Optional[BootConfig]) -> list[str]:
    """What config.txt gives away of the configured pins, in words; empty when nothing. The
    config's own mistakes (off the header, reserved, a bus's pin, a pin used twice) never get
    here: the loader refuses them (agent.pi.header)."""
    claims: dict[int, str] = dict(boot.claimed_pins()) if boot else {}
    problems: list[str] = []
    for use in pin_uses(cfg):
        if use.gpio in claims:
            where = f"GPIO {use.gpio} (pin {header.physical(use.gpio)})"
            problems.append(f"{use.what} is on {where}, which is taken by {claims[use.gpio]}")
    return problems


def check_gpio(
    cfg: Config, boot: Optional[BootConfig], host: Host, pin_factory: Any = None
) -> Result:
    """Pins free of conflicts; then, on a Pi, the service's access to /dev/gpiochip*, or, when
    simulating, each pin opened on gpiozero's MockFactory as the agent opens it."""
    name = "gpio"
    uses = pin_uses(cfg)
    if not uses:
        return info(name, "no relays or inputs in the config")
    problems = pin_conflicts(cfg, boot)
    if problems:
        return failed(
            name,
            "; ".join(problems),
            "move the wire and the config's pin to a free GPIO (see the wiring "
            "diagram in docs/installing.md)",
        )
    counted = _count(cfg)
    if pin_factory is not None:
        problem = _claim_simulated(cfg, pin_factory)
        if problem:
            return failed(name, problem, "correct the pin in the config")
        return passed(name, f"{counted} on free pins (simulated pins)")
    chips = sorted(host.path("/dev").glob("gpiochip*"))
    if not chips:
        return failed(
            name,
            "no /dev/gpiochip*: the kernel offers no GPIO here",
            "run on a Raspberry Pi with Raspberry Pi OS Bullseye or later",
        )
    for chip in chips:
        access = service_can_use(chip, host)
        if access:
            return failed(name, *access)
    return passed(
        name, f"{counted} on free pins; {', '.join(c.name for c in chips)} usable by {SERVICE_USER}"
    )


def _count(cfg: Config) -> str:
    r, i = len(cfg.control.relays), len(cfg.control.inputs)
    return f"{r} relay{'s' * (r != 1)} and {i} input{'s' * (i != 1)}"


def _claim_simulated(cfg: Config, factory: Any) -> Optional[str]:
    from gpiozero import DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

    opened: list[Any] = []
    try:
        for r in cfg.control.relays:
            opened.append(
                DigitalOutputDevice(
                    r.pin, active_high=r.active_high, initial_value=False, pin_factory=factory
                )
            )
        for i in cfg.control.inputs:
            opened.append(DigitalInputDevice(i.pin, pull_up=i.pull_up, pin_factory=factory))
    except GPIOZeroError as e:
        return f"gpiozero cannot open a pin: {e}"
    finally:
        for device in opened:
            device.close()
    return None


# Bluetooth ---------------------------------------------------------------------------------


def uses_ble(cfg: Optional[Config]) -> bool:
    """Whether the config reads BLE sensors or counts beacons: then the adapter must be up."""
    return cfg is not None and cfg.ble.active


def check_bluetooth(needed: bool, boot: Optional[BootConfig], host: Host) -> Result:
    name = "bluetooth"

    def verdict(ok: bool, detail: str, fix: str) -> Result:
        if not needed:
            return info(name, f"{detail} (the config uses no BLE sensors)")
        return passed(name, detail) if ok else failed(name, detail, fix)

    adapters = sorted(p.name for p in host.path("/sys/class/bluetooth").glob("hci*"))
    if not adapters:
        off = sorted({n for n, _ in (boot.overlays if boot else ())} & BT_OFF_OVERLAYS)
        if off:
            return verdict(
                False,
                f"no adapter: config.txt has dtoverlay={off[0]}",
                f"remove dtoverlay={off[0]} from config.txt, then sudo reboot",
            )
        return verdict(
            False,
            "no Bluetooth adapter: /sys/class/bluetooth is empty",
            "this Pi has no Bluetooth, or its driver is off: sudo systemctl "
            "start hciuart; a USB Bluetooth dongle also works",
        )
    blocked = _rfkill(host, adapters)
    if blocked:
        return verdict(
            False,
            f"{adapters[0]} present but {blocked}",
            "sudo rfkill unblock bluetooth"
            if "soft" in blocked
            else "a hardware switch or the firmware blocks the radio",
        )
    return verdict(True, f"{', '.join(adapters)} present, radio not blocked", "")


def _rfkill(host: Host, adapters: Iterable[str]) -> str:
    """Says "soft-blocked (rfkill)" or "hard-blocked (rfkill)" for a blocked radio, else ""."""
    for entry in sorted(host.path("/sys/class/rfkill").glob("rfkill*")):
        try:
            kind = (entry / "type").read_text().strip()
            label = (entry / "name").read_text().strip()
        except OSError:
            continue
        if kind != "bluetooth" or label not in adapters:
            continue
        for flag in ("hard", "soft"):
            try:
                if (entry / flag).read_text().strip() == "1":
                    return f"{flag}-blocked (rfkill)"
            except OSError:
                continue
    return ""
