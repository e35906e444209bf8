"""NTCIP 1202 (actuated signal controller) over SNMP: OID table, vendor profiles, codec, backend, agent."""
