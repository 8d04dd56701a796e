"""A pushed [room] or [[sessions]] followed by the running room service (agent.room.service).

Only [[sessions]] changed: the calendar's config sessions are replaced in place (pushed and
iCalendar sessions stay). [room] changed (volume, sensors, calendar, optimum start, ...): a new
RoomService is built for it, taking over from the old one what the room has lived so far: the
sessions pushed or fetched since, the session in progress (its report goes out at its end) and
today's comfort shares. [room] removed: the service stops; added: one starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from agent.config.schema import Config
    from agent.config.sessions import Session
    from agent.room.service import RoomService


def follow(
    service: Optional[RoomService],
    config: Config,
    make: Callable[[], RoomService],
    start: Callable[[RoomService], None],
) -> Optional[RoomService]:
    """The room service for `config` (already the running one: `make` reads it)."""
    if config.room is None:
        if service is not None:
            service.close()
        return None
    if service is not None and (service.monitor.config, service.monitor.timezone) == (
        config.room, config.control.timezone
    ):  # fmt: skip
        service.monitor.calendar.replace("config", config.sessions)
        return service
    new = make()
    if service is not None:
        old, monitor = service.monitor, new.monitor
        kept: dict[str, list[Session]] = {}
        for s in old.calendar.sessions:
            if s.source != "config":
                kept.setdefault(s.source, []).append(s)
        for source, sessions in kept.items():
            monitor.calendar.replace(source, sessions)
        monitor.tracker, monitor.recorder = old.tracker, old.recorder
        service.close()
    start(new)
    return new
