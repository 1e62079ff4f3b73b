"""Warm start: a DVC stage's `netpipe` command forked from a process that has already imported torch.

`dvc repro` runs every stage as its own `netpipe` process, and each one spends 2-3 s importing torch (plus 1.6 s
for torch._dynamo in train, 0.9 s for onnx in export) and ~0.5 s tearing it down at exit before and after work
that, in the quick check, takes well under a second for most networks. So when netpipe runs as a DVC stage
(DVC sets DVC_STAGE) on Linux, its command goes to a small server that holds those modules imported and forks a
child per command, the way multiprocessing's forkserver or PyTorch's DataLoader workers start:

- the first stage command finds no server: it starts one in the background (its own session, stdin/stdout/stderr
  on /dev/null) and runs itself as usual; the commands after it are forked from the server;
- the child runs `netpipe ...` as the command would have: the command's own stdin, stdout and stderr (passed over
  the socket), working directory, environment, sys.path and argv; the `pipeline` package imported afresh from
  that sys.path (the server imports third-party modules only, so an edited stage always runs its new code); the
  exit code, or the signal that ended it, is the command's;
- Ctrl-C, SIGTERM and SIGHUP sent to the command are passed on to the child; if the command dies without passing
  them (SIGKILL), the server ends the child;
- a server serves one interpreter, sys.path and environment (DVC_STAGE and other per-command variables aside): the
  key of its socket hashes them, so any difference gets its own server, and nothing read from the environment at
  import time can differ from a fresh start. It exits after IDLE_SECONDS without a command (NETPIPE_WARM_IDLE
  sets them), and never runs one of its own: it imports, forks and waits.

It is on by default for the quick check only (DVC_STAGE set and `quick.enabled` true in the params file the command
reads), where process start-up is most of the work: 71 s of the 212 s one-network-per-seed quick check on 2 cores.
A full run spends hours in its stages and would save seconds, so it runs plain processes; NETPIPE_WARM=1 asks for
the server anyway, NETPIPE_WARM=0 never uses it. Whatever goes wrong before the child starts (no socket, no server
yet, a refused connection) runs the command as a plain process. Linux only.

Forking is safe only from a process that has run no torch op (a matmul starts the OpenMP thread pool, and a child
forked after it hangs on its first parallel op) and has not initialised CUDA. The server checks both before every
fork: the number of its threads must not have grown since its imports, and `torch.cuda.is_initialized()` must be
false. Otherwise it refuses (the command prints one line and runs as a plain process) and exits.

This module is the command's side (`wanted`, `run`) and the wire format both sides share; the server and the child it
forks are in warm_server.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import sys

PROTOCOL = 1
# third-party only (see the module docstring); not onnxruntime, whose import starts a thread (and costs ~0.03 s)
PRELOAD = ("numpy", "torch", "torch._dynamo", "onnx", "torchvision", "pydantic", "yaml", "typer", "tqdm", "PIL.Image")
STAGES = frozenset({"prepare", "train", "evaluate", "export", "bench", "report"})
IDLE_SECONDS = 60.0
KILL_GRACE_SECONDS = 10.0
# set per command by DVC or the shell; the child gets them all, but they do not make another server
VOLATILE_ENV = frozenset({"DVC_STAGE", "_", "SHLVL", "PWD", "OLDPWD"})
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
_HEADER = struct.Struct("!I")  # the wire: each message is its length, then that much JSON (_send, _recv)


def wanted(argv: list[str]) -> bool:
    """Whether `netpipe ARGV` goes through a warm server: NETPIPE_WARM=1/0, else a DVC stage of the quick check."""
    if not (sys.platform == "linux" and len(argv) > 1 and argv[1] in STAGES and hasattr(socket, "send_fds")):
        return False
    setting = os.environ.get("NETPIPE_WARM")
    if setting is not None:
        return setting == "1"
    return bool(os.environ.get("DVC_STAGE")) and _quick_check(argv)


def _quick_check(argv: list[str]) -> bool:
    """`quick.enabled` in the params file ARGV names (-p/--params, default params.yaml); False if unreadable (the
    plain command then reports the problem)."""
    path = "params.yaml"
    for i, a in enumerate(argv):
        if a in ("-p", "--params") and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith("--params="):
            path = a.split("=", 1)[1]
    try:
        import yaml

        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        return raw["quick"]["enabled"] is True
    except Exception:
        return False


def _key() -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE_ENV)
    here = os.getcwd() if "" in sys.path else None  # `python -c`: imports resolve from the working directory too
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # a child could raise its niceness, not lower it: part of the key
    blob = json.dumps([PROTOCOL, sys.executable, sys.path, here, env, sys.flags.optimize, nice])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def socket_dir() -> str | None:
    """A directory only this user can use (created 0700), or None."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(base, f"netpipe-warm-{os.getuid()}")
    if len(path) > 60:  # a socket's whole path must fit in 107 bytes (sun_path)
        path = f"/tmp/netpipe-warm-{os.getuid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    st = os.lstat(path)
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def _send(conn: socket.socket, obj: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    frame = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(conn, [frame], fds)
    else:
        conn.sendall(frame)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _recv(conn: socket.socket) -> dict:
    (n,) = _HEADER.unpack(_recv_exact(conn, _HEADER.size))
    return json.loads(_recv_exact(conn, n))


# ---------------------------------------------------------------------------------------------------- the command
def run(argv: list[str]) -> int | None:
    """Run `netpipe ARGV` in a child of the warm server and return its exit code; None: not run, run it here."""
    import signal

    d = socket_dir()
    if d is None:
        return None
    path = os.path.join(d, _key() + ".sock")
    # signals from the start: held until the child's pid is known, then passed on; re-raised here if it never is.
    # One this process ignores (nohup, a background job) stays ignored, here and in the child.
    ignored = [n for n in FORWARDED_SIGNALS if signal.getsignal(getattr(signal, n)) is signal.SIG_IGN]
    held: list[int] = []
    target: list[int] = []

    def forward(signum, _frame):
        if not target:
            held.append(signum)
            return
        try:
            os.killpg(target[0], signum)  # its process group, as a terminal's Ctrl-C reaches every process of the job
        except ProcessLookupError:
            pass

    previous = {n: signal.signal(getattr(signal, n), forward) for n in FORWARDED_SIGNALS if n not in ignored}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reply: dict = {}
    try:
        conn.connect(path)
        umask = os.umask(0)
        os.umask(umask)
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "path": list(sys.path),
                   "ignored": ignored, "umask": umask, "cpus": sorted(os.sched_getaffinity(0))}
        _send(conn, request, [0, 1, 2])
        reply = _recv(conn)
    except (OSError, EOFError, ValueError):
        _start_server(path)
    if "refused" in reply:
        print(f"netpipe: warm start off: {reply['refused']}; running this command as a plain process", file=sys.stderr)
    if "pid" not in reply:  # no server, or it could not start a child: run it here, as if it had all along
        conn.close()
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
        for signum in held:
            os.kill(os.getpid(), signum)
        return None
    target.append(reply["pid"])
    for signum in held:
        forward(signum, None)
    return _wait(conn, reply["pid"], previous)


def _wait(conn: socket.socket, pid: int, handlers: dict) -> int:
    import signal

    try:  # a forwarded signal interrupts recv, which Python then resumes (PEP 475)
        reply = _recv(conn)
    except (OSError, EOFError, ValueError):
        print(f"netpipe: error: lost the warm-start server running this command (pid {pid}); "
              "run it again, or with NETPIPE_WARM=0", file=sys.stderr)
        return 1
    if "signal" in reply:  # end as the child did, so DVC sees the same status
        for name in handlers:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.kill(os.getpid(), reply["signal"])
        return 128 + reply["signal"]
    return int(reply["exit"])


def _start_server(path: str) -> None:
    import subprocess

    boot = ("import sys, json; sys.path[:] = json.loads(sys.argv[2]); "
            "from pipeline.warm_server import serve; serve(sys.argv[1])")
    try:
        subprocess.Popen([sys.executable, "-c", boot, path, json.dumps(sys.path)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         close_fds=True)
    except OSError:
        pass
