"""The grid's emission factor is one fact: `[energy] grid_factor` (g CO2e/kWh). The older
`control.grid_emission_factor` (kg CO2e/kWh) is still read, with a warning naming the new key
and the conversion (1 kg = 1000 g); both given and disagreeing is a config error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.config import schema as config
from agent.config.errors import ConfigError, ConfigErrors

NODE = '[node]\nid = "n1"\nstate_dir = "state"\n[broker]\nhost = "localhost"\n'


def load(tmp_path: Path, extra: str) -> config.Config:
    path = tmp_path / "node.toml"
    path.write_text(NODE + extra)
    return config.load(path)


def test_neither_key_gives_the_documented_default(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert cfg.energy.grid_factor == 250.0  # docs/energy.md: Italy, ISPRA
    assert cfg.energy.kg_per_kwh == 0.25
    assert not hasattr(cfg.control, "grid_emission_factor")  # one place for the fact


def test_the_energy_key_alone_is_read_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load(tmp_path, "[energy]\ngrid_factor = 400\n")
    assert cfg.energy.grid_factor == 400.0 and cfg.energy.kg_per_kwh == 0.4
    assert "deprecated" not in caplog.text


@pytest.mark.parametrize("energy", ["", "[energy]\ngrid_factor = 380.0\n"])
def test_the_old_key_is_converted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, energy: str
) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load(tmp_path, "[control]\ngrid_emission_factor = 0.38\n" + energy)
    assert cfg.energy.grid_factor == pytest.approx(380.0)
    assert "control.grid_emission_factor is deprecated" in caplog.text
    assert "[energy] grid_factor = 380" in caplog.text and "x 1000" in caplog.text


def test_both_keys_disagreeing_is_an_error_naming_both(tmp_path: Path) -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        load(tmp_path, "[control]\ngrid_emission_factor = 0.4\n[energy]\ngrid_factor = 250\n")
    message = str(e.value)
    assert "control.grid_emission_factor" in message and "energy.grid_factor" in message
    assert "0.4 kg/kWh (400 g/kWh)" in message and "250 g/kWh" in message


@pytest.mark.parametrize(
    ("value", "problem"), [("3.0", "must be 0..2 kg CO2e/kWh"), ('"x"', "must be a number")]
)
def test_a_bad_old_value_is_an_error(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        load(tmp_path, f"[control]\ngrid_emission_factor = {value}\n")
    assert "control.grid_emission_factor" in str(e.value) and problem in str(e.value)
