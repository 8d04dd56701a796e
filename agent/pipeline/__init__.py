"""Readings from their devices to the broker: reporting policy, the durable outbox with its RAM
stage, the forwarder."""
