"""MQTT itself: the thin paho adapter and the topic and payload contract (docs/mqtt.md)."""
