"""Modbus energy meters: lines (RS-485 or TCP) as buses, counters that never go backwards.

pymodbus and pyserial are imported only by agent.sensing.modbus.line, and only when a config has a
[[modbus]] line.
"""
