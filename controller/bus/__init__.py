"""The device bus: MQTT protocol v1 between the hall engine and the hall's devices."""
