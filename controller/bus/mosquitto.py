"""A Mosquitto of our own, supervised: Debian's ``mosquitto`` as a child process.

``Mosquitto`` writes its files in a folder of its own (owner-only), starts the broker, waits
until it listens, restarts it with a growing pause (1 s, doubling to 30 s) when it dies, and
reloads its users and ACL with SIGHUP (``refresh``). On a reload Mosquitto 2.0 checks every
connected client's password again and disconnects the ones no longer in the password file
(checked by ``tests/test_broker_security.py``), so a removed or disabled device is cut off at
once, and a device whose password was reset must log in with the new one.

The child runs in a session of its own (a terminal's Ctrl-C reaches the hall server only, which
stops the broker last) and is sent SIGTERM by the kernel if the hall server dies, however it
dies: a killed server never leaves a broker holding the port. On SIGTERM Mosquitto saves its
retained messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from controller.startup import StartupError, busy_port
from controller.storage import private
from protocol.link import BrokerAddress

log = logging.getLogger("yimen.broker")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
RESTART_FIRST_S, RESTART_MAX_S = 1.0, 30.0
STABLE_S = 60.0                  # running this long resets the restart pause
LOG_KEEP = 10 * 1024 * 1024      # at start a longer log is kept as mosquitto.log.1
CONF, LOG = "mosquitto.conf", "mosquitto.log"


def binary() -> str | None:
    """Debian's ``mosquitto`` (in /usr/sbin, often not on a user's PATH), or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def conf_text(hall: str, listen: BrokerAddress, folder: Path | None = None,
              tls: tuple[BrokerAddress, str, str] | None = None) -> str:
    """``mosquitto.conf`` for a hall: in ``folder`` as ``yimen serve`` runs it (absolute paths,
    a log file, the server's own user), else for an external Mosquitto run in the files'
    folder (``yimen broker-config``). ``tls``: a TLS listener, its certificate and key."""
    at = f"{folder}/" if folder is not None else ""
    head = (f"# Mosquitto 2 for Yimen hall {hall}, written by yimen serve at every start:\n"
            "# change the hall file's [bus] section, not this file.\n" if folder is not None
            else f"# Mosquitto 2 for Yimen hall {hall}, written by yimen broker-config.\n")
    tls_lines = (f"listener {tls[0].port} {tls[0].host}\nuse_username_as_clientid true\n"
                 f"certfile {tls[1]}\nkeyfile {tls[2]}\n" if tls else "")
    own = (f"persistence_location {at}\nlog_dest file {at}{LOG}\n"
           "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
           "# the hall server's own user (as root Mosquitto would switch to 'mosquitto', who\n"
           f"# cannot read these owner-only files)\nuser {_user()}\n") if folder is not None else ""
    return head + f"""per_listener_settings false
allow_anonymous false
password_file {at}passwd
acl_file {at}acl
# Each listener: a client's id is its user name, so there is one connection per device, and a
# CONNECT naming another client's id can never take that client's session over (the
# controller's included). (A listener's own setting: before any listener it would open a
# default one on every interface.)
listener {listen.port} {listen.host}
use_username_as_clientid true
{tls_lines}# Protocol v1 needs low latency: without it Nagle and delayed ACKs add ~40 ms per hop.
set_tcp_nodelay true
# QoS 1 messages in flight to one client before the broker waits for its acknowledgements:
# 100 (default 20), so the controller, which reads every device's events, takes a burst of a
# full hall's takes without a round trip per 20.
max_inflight_messages 100
# QoS 1 messages queued for one client beyond those; past 1000 the broker drops new ones for
# it, so a flood cannot fill its memory. Devices resend an event that got no reply and the
# controller republishes every set and the board on reconnect: nothing is lost for good, and
# 1000 holds a burst from every device of a county hall (~500) twice over.
max_queued_messages 1000
# Retained messages (the sets, the board) are saved at least every 10 s and at every stop;
# after a crash the controller republishes them anyway.
persistence true
autosave_interval 10
{own}"""


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _with_parent() -> list[str]:
    """The command prefix that has the broker sent SIGTERM when the hall server's process
    ends (util-linux's ``setpriv``, Debian's essential; without it the server still stops its
    broker whenever it stops in order). Not a ``preexec_fn``: forking with the server's threads
    running (hashing, SQLite) must exec at once."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


async def answers(address: BrokerAddress) -> bool:
    """Whether something accepts connections at ``address`` (a wildcard host: this machine)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address.host, address.host)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, address.port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class Mosquitto:
    """``start``, ``refresh`` (files again, then SIGHUP), ``stop``; ``status`` for health.
    ``files`` makes every file but the configuration (``passwd``, ``acl``) afresh."""

    def __init__(self, folder: str | Path, address: BrokerAddress, conf: str,
                 files: Callable[[], Awaitable[dict[str, str]]]) -> None:
        self.folder = Path(folder).resolve()
        self.address = address
        self._conf = conf
        self._files = files
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self._since = 0.0
        #: why it is down (zh-CN / English), or None while it runs
        self.down: str | None = "not started"
        self.restarts = 0
        self._lock = asyncio.Lock()
        self._asked = self._done = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def status(self) -> dict[str, object]:
        return {"ok": False, "error": self.down} if self.down else {"ok": True}

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Write the files, start Mosquitto and wait until it listens; a ``StartupError``
        saying why in one line when it does not."""
        self._stopping = False
        private.narrow(private.private_folder(self.folder))
        log_file = self.folder / LOG
        if log_file.exists() and log_file.stat().st_size > LOG_KEEP:
            log_file.replace(self.folder / f"{LOG}.1")
        self._write({CONF: self._conf, **await self._files()})
        await self._launch()
        self._supervisor = asyncio.create_task(self._supervise(), name="yimen-mosquitto")

    async def stop(self) -> None:
        """Stop it (SIGTERM: it saves its retained messages), killing it after
        ``STOP_TIMEOUT_S``."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("Mosquitto did not stop within %g s; killing it", STOP_TIMEOUT_S)
                proc.kill()
                await proc.wait()
        self.down = "stopped"

    async def refresh(self) -> None:
        """Write the users and the ACL again and make Mosquitto reload them. Calls that come
        while one is under way share the next one."""
        self._asked += 1
        wanted = self._asked
        async with self._lock:
            if self._done >= wanted:
                return                       # a rewrite begun after this call covered it
            upto = self._asked
            self._write(await self._files())
            self._done = upto
            if self.down is None and self._proc is not None and self._proc.returncode is None:
                self._proc.send_signal(signal.SIGHUP)

    def cpu_s(self) -> float | None:
        """The broker process's CPU time so far (user + system; Linux), or None."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # ------------------------------------------------------------------ the process
    def _write(self, files: dict[str, str]) -> None:
        """Each file written whole (owner-only) and renamed into place: a reload never reads
        half of one."""
        for name, text in files.items():
            temp = self.folder / f".{name}.new"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temp, self.folder / name)

    async def _launch(self) -> None:
        exe = binary()
        if exe is None:
            raise StartupError("找不到 mosquitto，请安装（Debian：apt-get install mosquitto）",
                               "mosquitto is not installed (Debian: apt-get install mosquitto)")
        log_path = self.folder / LOG
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        seen = os.fstat(fd).st_size                # its own lines start here
        try:
            self._proc = proc = await asyncio.create_subprocess_exec(
                *_with_parent(), exe, "-c", str(self.folder / CONF), cwd=self.folder,
                stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
        finally:
            os.close(fd)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await answers(self.address):
            if proc.returncode is not None:
                raise self._failed(log_path, seen, f"status {proc.returncode}")
            if loop.time() > deadline:
                proc.kill()
                await proc.wait()
                raise self._failed(log_path, seen, f"not listening after {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.02)
        self.down, self._since = None, loop.time()
        log.info("Mosquitto on %s:%d (process %d), files in %s", self.address.host,
                 self.address.port, proc.pid, self.folder)

    def _failed(self, log_path: Path, seen: int, how: str) -> StartupError:
        """Why it did not start, from what it wrote to its log."""
        with open(log_path, "rb") as f:
            f.seek(seen)
            said = f.read(64 * 1024).decode("utf-8", "replace")
        if "Address already in use" in said:
            return busy_port("MQTT", self.address.host, self.address.port, "--mqtt")
        why = next((line.split(": ", 1)[-1] for line in reversed(said.splitlines())
                    if "Error" in line), how)
        return StartupError(f"Mosquitto 未能启动：{why}（日志：{log_path}）",
                            f"Mosquitto did not start: {why} (log: {log_path})")

    async def _supervise(self) -> None:
        """Restart Mosquitto whenever it dies, pausing longer each time it dies again soon."""
        loop = asyncio.get_running_loop()
        pause = RESTART_FIRST_S
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            if self.down is None and loop.time() - self._since > STABLE_S:
                pause = RESTART_FIRST_S
            self.down = (f"Mosquitto 已退出（状态 {code}），{pause:g} 秒后重启 / "
                         f"Mosquitto exited (status {code}); restarting in {pause:g} s")
            log.error("Mosquitto (process %d) exited with status %s; restarting in %g s",
                      proc.pid, code, pause)
            await asyncio.sleep(pause)
            pause = min(RESTART_MAX_S, pause * 2)
            try:
                await self._launch()
            except StartupError as exc:
                log.error("Mosquitto did not start again: %s", exc)
                continue
            self.restarts += 1
            log.warning("Mosquitto restarted (process %s, restart %d)", self.pid, self.restarts)
