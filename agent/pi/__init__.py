"""The Raspberry Pi itself: its 40-pin header, its config.txt, the GPIO pin factory."""
