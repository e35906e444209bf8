"""Field controller adapters (Modbus TCP, NTCIP 1202) and controller emulators."""
