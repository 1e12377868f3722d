"""Sans-I/O codecs for the hall's serial devices: bytes in, messages out, and back.

No ports, no asyncio: each decoder is fed whatever bytes arrived (``feed``), returns the
complete messages, keeps a truncated frame until the rest comes, and drops and counts what
cannot be a frame (``bad_frames``, ``dropped_bytes``). ``devices.gateway`` is the only module
that touches a port.
"""
