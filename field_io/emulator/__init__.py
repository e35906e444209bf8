"""Controller emulators: a real local controller (own safety, fallback plan, watchdog) behind Modbus or NTCIP."""
