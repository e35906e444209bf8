"""SUMO backend (libsumo / TraCI) and KPIs."""
