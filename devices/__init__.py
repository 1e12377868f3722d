"""Device side: codecs, the serial/GPIO gateway and simulated devices (protocol v1)."""
