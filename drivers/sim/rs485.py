"""A simulated RS-485 line: two pseudo-terminals joined by a thread that carries the bytes.

    line = SimRS485(baudrate=9600, parity="N", stopbits=1)
    server on line.server_port, client (the agent) on line.client_port

Bytes take the time they would on the wire (bits per character / baud rate), so a benchmark
sees a 9600-baud line's real frame rate. `corrupt_next(n)` flips a bit in the next n frames
the meters send (a CRC error as induced by a missing terminator or a ground loop).
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from typing import Optional


class SimRS485:
    def __init__(
        self, baudrate: int = 9600, parity: str = "N", stopbits: int = 1, paced: bool = True
    ) -> None:
        self.baudrate, self.parity, self.stopbits = baudrate, parity, stopbits
        self.char_time = (1 + 8 + (parity != "N") + stopbits) / baudrate if paced else 0.0
        self._server_master, server_slave = os.openpty()
        self._client_master, client_slave = os.openpty()
        # The slave ends stay open here too, so a master never reads EIO while nobody has the
        # port open (between a client's close and its reopen).
        self._slaves = (server_slave, client_slave)
        for fd in self._slaves:
            tty.setraw(fd)
        self.server_port = os.ttyname(server_slave)
        self.client_port = os.ttyname(client_slave)
        self._corrupt = 0
        self._lock = threading.Lock()
        self._stop_r, self._stop_w = os.pipe()
        self._thread: Optional[threading.Thread] = threading.Thread(
            target=self._run, name="sim-rs485", daemon=True
        )
        self._thread.start()

    def corrupt_next(self, frames: int = 1) -> None:
        with self._lock:
            self._corrupt = frames

    def _run(self) -> None:
        pair = {self._server_master: self._client_master, self._client_master: self._server_master}
        while True:
            ready, _, _ = select.select([*pair, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 512)
                except OSError:
                    continue
                if fd == self._server_master:
                    data = self._maybe_corrupt(data)
                if self.char_time:
                    time.sleep(len(data) * self.char_time)
                os.write(pair[fd], data)

    def _maybe_corrupt(self, data: bytes) -> bytes:
        with self._lock:
            if not self._corrupt or not data:
                return data
            self._corrupt -= 1
        damaged = bytearray(data)
        damaged[len(damaged) // 2] ^= 0x10
        return bytes(damaged)

    def close(self) -> None:
        if self._thread is None:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for fd in (
            self._server_master,
            self._client_master,
            *self._slaves,
            self._stop_r,
            self._stop_w,
        ):
            os.close(fd)
