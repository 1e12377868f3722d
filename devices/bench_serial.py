"""``yimen bench serial``: the software's cost per frame next to the frame's time on the wire.

Over a pseudo-terminal pair (no wire, so what is measured is software alone): the gateway's
side opens the pty as its serial port (pyserial's asyncio transport, as the gateway does) and
runs ybus's host; the other side is the simulated device, answering each ``POLL`` with
``IDLE``. One exchange is two frames, each encoded, written, read, decoded and acted on. In
the same run, the baseline: the same port and loop, with the device echoing the raw bytes and
no codec on either side. The wire time of a frame is 10 bits a byte at the baud rate.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from devices.codecs import ybus
from devices.serialport import open_port, wire_seconds
from devices.serialsim import PtyDevice, YbusDevices


class _Echo(PtyDevice):
    def on_bytes(self, data: bytes) -> None:
        self.send(data)


async def _exchanges(sim: PtyDevice, baud: int, n: int, with_codec: bool) -> list[float]:
    await sim.start()
    reader, writer = await open_port(sim.path, baud)
    loop = asyncio.get_running_loop()
    host = ybus.BusHost([1], reply_timeout_s=5.0)
    raw = ybus.Frame(1, 0, ybus.POLL).encode()
    out: list[float] = []
    try:
        for i in range(n + 50):                     # the first 50 warm up
            t0 = time.perf_counter()
            if with_codec:
                frame = host.request(loop.time())
                assert frame is not None            # the last exchange was answered
                writer.write(frame)
                while host.awaiting:
                    host.receive(await reader.read(4096), loop.time())
            else:
                writer.write(raw)
                got = 0
                while got < len(raw):
                    got += len(await reader.read(4096))
            if i >= 50:
                out.append(time.perf_counter() - t0)
    finally:
        writer.close()
        await sim.stop()
    return out


async def run(frames: int = 2000, bauds: tuple[int, ...] = (9600, 115200)) -> dict[str, Any]:
    frame_bytes = len(ybus.Frame(1, 0, ybus.POLL).encode())
    result: dict[str, Any] = {"frames": frames, "frame_bytes": frame_bytes, "bauds": {}}
    coded = await _exchanges(YbusDevices([1]), bauds[0], frames, True)
    bare = await _exchanges(_Echo(), bauds[0], frames, False)
    per_frame = [t / 2 for t in coded]
    base = [t / 2 for t in bare]
    result["per_frame_ms"] = _q(per_frame)
    result["baseline_ms"] = _q(base)
    for baud in bauds:
        wire = wire_seconds(frame_bytes, baud) * 1000
        result["bauds"][baud] = {"wire_ms": wire,
                                 "overhead_mean": result["per_frame_ms"]["mean"] / wire,
                                 "overhead_p50": result["per_frame_ms"]["p50"] / wire,
                                 "overhead_p99": result["per_frame_ms"]["p99"] / wire}
    return result


def _q(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    q = statistics.quantiles(ms, n=100)
    return {"p50": q[49], "p99": q[98], "mean": statistics.fmean(ms)}


def report(r: dict[str, Any]) -> str:
    pf, base = r["per_frame_ms"], r["baseline_ms"]
    lines = [f"ybus POLL/IDLE exchanges over a pty pair: {r['frames']}, {r['frame_bytes']}-byte frames",
             f"software per frame (codec, port, loop, both ends): mean {pf['mean']:.3f} ms, "
             f"p50 {pf['p50']:.3f} ms, p99 {pf['p99']:.3f} ms",
             f"baseline, the same port and loop with raw bytes echoed: p50 {base['p50']:.3f} ms, "
             f"p99 {base['p99']:.3f} ms"]
    for baud, b in r["bauds"].items():
        verdict = ""
        if baud == 9600:
            verdict = f" (target: under 10 % on average: {'ok' if b['overhead_mean'] < 0.10 else 'MISSED'})"
        lines.append(f"{baud} baud: a frame is {b['wire_ms']:.2f} ms on the wire; software adds "
                     f"{b['overhead_mean']:.1%} on average, {b['overhead_p50']:.1%} at p50, "
                     f"{b['overhead_p99']:.1%} at p99{verdict}")
    return "\n".join(lines)
