"""The doctor's word on the GPIO pin factory: which one the agent would use, and why."""

from __future__ import annotations

from agent.config.schema import Config
from agent.pi.pins import ENV, PinChoice, choose
from agent.tools.doctor_checks import Result, failed, info, passed


def check_pin_factory(cfg: Config, simulated: bool) -> Result:
    name = "pin factory"
    if not (cfg.control.relays or cfg.control.inputs):
        return info(name, "the config uses no GPIO")
    choice = choose(simulated)
    try:
        return verdict(choice)
    finally:
        if choice.factory is not None:
            choice.factory.close()  # lgpio holds the gpiochip open until then


def verdict(choice: PinChoice) -> Result:
    name = "pin factory"
    if not choice.error:
        return passed(name, choice.describe())
    if "cannot be imported" in choice.error:
        fix = "sudo install.sh again: it installs lgpio into the agent's venv"
    elif choice.name != "lgpio":
        fix = f"unset {ENV} (lgpio is the default) or name a factory gpiozero knows"
    else:
        fix = ("check that /dev/gpiochip* exists (a Raspberry Pi) and that group gpio may use it "
               "(ls -l /dev/gpiochip*)")  # fmt: skip
    return failed(name, choice.describe(), fix)
