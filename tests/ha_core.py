"""A real Home Assistant core for the tests: started headless in its own config directory,
onboarded over REST like a new user, MQTT added through the config flow (no YAML).

The websocket API (registries, statistics, energy) is spoken by a small script run with Home
Assistant's own interpreter, whose venv has aiohttp: the test environment needs nothing extra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tests.mqtt_fixtures import free_port

WS_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    import aiohttp

    async def main():
        url, token = sys.argv[1], sys.argv[2]
        messages = json.load(sys.stdin)
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            results = []
            for i, m in enumerate(messages, 1):
                await ws.send_json({"id": i, **m})
                while True:
                    r = await ws.receive_json()
                    if r.get("id") == i and r.get("type") == "result":
                        break
                results.append(r)
            json.dump(results, sys.stdout)

    asyncio.run(main())
""")


class HomeAssistant:
    def __init__(self, hass: Path, config_dir: Path) -> None:
        self.hass, self.dir = hass, config_dir
        self.python = hass.parent / "python"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = config_dir / "hass.log"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "configuration.yaml").write_text(
            textwrap.dedent(f"""
            homeassistant:
              name: roomagent test
              unit_system: metric
              time_zone: UTC
              latitude: 51.5
              longitude: 0
              elevation: 0
              currency: GBP
            http:
              server_host: 127.0.0.1
              server_port: {self.port}
            api:
            websocket_api:
            onboarding:
            config:
            recorder:
              commit_interval: 1
            history:
            energy:
            logger:
              default: info
        """)
        )

    # Process.

    def start(self, timeout: float = 600.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.hass), "-c", str(self.dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": ""},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()[-4000:]
            try:
                with urllib.request.urlopen(f"{self.url}/manifest.json", timeout=2):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        raise AssertionError(f"Home Assistant did not start:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # REST.

    def request(self, method: str, path: str, body: Any = None, form: bool = False,
                auth: bool = True, timeout: float = 60.0) -> Any:  # fmt: skip
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def onboard(self) -> None:
        client_id = f"{self.url}/"
        user = self.request("POST", "/api/onboarding/users", {
            "client_id": client_id, "name": "Test", "username": "test",
            "password": "test-password-1", "language": "en",
        }, auth=False)  # fmt: skip
        token = self.request("POST", "/auth/token", {
            "grant_type": "authorization_code", "code": user["auth_code"], "client_id": client_id,
        }, form=True, auth=False)  # fmt: skip
        self.token = token["access_token"]
        self.request("POST", "/api/onboarding/core_config", {})
        self.request("POST", "/api/onboarding/analytics", {})
        redirect = f"{self.url}/?auth_callback=1"
        self.request("POST", "/api/onboarding/integration",
                     {"client_id": client_id, "redirect_uri": redirect})  # fmt: skip

    def add_mqtt(self, port: int) -> dict[str, Any]:
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        for _ in range(5):
            if flow.get("type") == "create_entry":
                return flow
            assert flow.get("type") == "form", flow
            flow = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                                {"broker": "127.0.0.1", "port": port})  # fmt: skip
        raise AssertionError(f"MQTT config flow did not finish: {flow}")

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.request("GET", "/api/states")}

    def call(self, domain: str, service: str, **data: Any) -> Any:
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    # Websocket.

    def ws(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
        url = f"ws://127.0.0.1:{self.port}/api/websocket"
        done = subprocess.run(
            [str(self.python), "-c", WS_SCRIPT, url, self.token],
            input=json.dumps(list(messages)).encode(), capture_output=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return list(json.loads(done.stdout))
