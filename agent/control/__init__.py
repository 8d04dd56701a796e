"""Local room control: relays, inputs, thermostat, lights, ventilation, scenes.

Everything here takes an injected clock and runs without the network, so a room stays controlled
while the broker is away, and tests run hours of room behaviour in milliseconds.
"""
