"""How well the room serves people: comfort category, headcount, sessions and their reports."""
