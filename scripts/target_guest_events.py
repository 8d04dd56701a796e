"""For scripts/target_guest.sh: the first GPIO 'unavailable' event still in the agent's buffer
(a guest whose journal records nothing), as a "GPIO pins: ..." line; nothing if none."""

import sqlite3

db = sqlite3.connect("file:/var/lib/roomagent/buffer.sqlite?mode=ro", uri=True)
for (payload,) in db.execute("SELECT payload FROM outbox WHERE topic LIKE '%/events'"):
    text = bytes(payload).decode(errors="replace")
    if "cannot drive GPIO" in text or "cannot open GPIO" in text:
        print("GPIO pins: " + text)
        break
