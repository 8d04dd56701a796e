"""The sensing core: buses that schedule their devices' transactions around their waits.

agent.sensing.operation: a measurement as bus transactions with waits between them.
agent.sensing.scheduler: one deadline-driven scheduler per bus.
agent.sensing.cadence: the interval each device actually achieves.
docs/sensing.md describes the driver contract and how a bus of another kind plugs in.
"""
