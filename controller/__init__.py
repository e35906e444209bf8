"""Engine, safety supervisor, offline timing and control policies. Pure: no SUMO, Modbus, SNMP or web imports."""
