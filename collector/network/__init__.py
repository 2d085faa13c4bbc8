"""Network devices and services: SNMP polling, traps, network CLI and config backup, active probes."""
