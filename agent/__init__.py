"""roomagent: room sensors and relays to MQTT, with a durable store-and-forward buffer."""

__version__ = "0.1.0"
