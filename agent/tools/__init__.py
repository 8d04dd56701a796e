"""Installers' commands: doctor and its checks, bus scans, watch, wiring diagrams,
registration."""
