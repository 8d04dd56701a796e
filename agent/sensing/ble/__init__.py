"""BLE sensors and presence beacons: one shared scanner, a per-device layer, presence counting.

Nothing here imports bleak at module level except agent.sensing.ble.scanner, which the runtime
imports only when the config has a [ble] device or presence group.
"""
