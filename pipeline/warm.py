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
_HEADER = struct.Struct("!I")
_OLD_STREAMS: list = []  # a child's: the server's sys.stdout and sys.stderr, which now write to the command's fds


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
            "from pipeline.warm import serve; serve(sys.argv[1])")
    try:
        subprocess.Popen([sys.executable, "-c", boot, path, json.dumps(sys.path)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         close_fds=True)
    except OSError:
        pass


# ----------------------------------------------------------------------------------------------------- the server
def serve(path: str) -> None:
    """Import PRELOAD, then fork a child per request on the socket at `path` until IDLE_SECONDS pass idle."""
    import fcntl
    import importlib
    import select
    import signal
    import time

    lock = open(path + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server has it

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    baseline = _threads()  # the imports' own threads (numpy's BLAS pool); no torch op has run
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    children: dict[int, socket.socket] = {}  # child pid -> its command's connection
    dropped: dict[int, float] = {}  # child pid -> when its command went away (SIGTERM sent)
    idle = float(os.environ.get("NETPIPE_WARM_IDLE", IDLE_SECONDS))
    last = time.monotonic()
    closed = False  # refused: no new commands; the running ones end as usual, then the server exits
    try:
        while children or (not closed and time.monotonic() - last < idle):
            watched = [c for p, c in children.items() if p not in dropped]  # a closed one stays readable
            ready, _, _ = select.select(([] if closed else [listener]) + watched, [], [], 0.05)
            for sock in ready:
                if sock is listener:
                    why = _unsafe_to_fork(baseline)
                    pid = _accept(listener, children, lock, refuse=why)
                    if why is not None:  # that command was told why and runs itself; no new ones
                        closed = True
                        os.unlink(path)
                        listener.close()
                        lock.close()  # a new server may start beside this one's last children
                        continue
                    if pid is not None:
                        last = time.monotonic()
                    continue
                pid = next(p for p, c in children.items() if c is sock)
                if pid not in dropped:  # the command's end closed before its child exited: end the child
                    dropped[pid] = time.monotonic()
                    _kill(pid, signal.SIGTERM)
            for pid, since in list(dropped.items()):
                if time.monotonic() - since > KILL_GRACE_SECONDS:
                    _kill(pid, signal.SIGKILL)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = children.pop(pid, None)
                dropped.pop(pid, None)
                last = time.monotonic()
                if conn is None:
                    continue
                reply = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                         else {"exit": os.waitstatus_to_exitcode(status)})
                try:
                    _send(conn, reply)
                except OSError:
                    pass
                conn.close()
    finally:  # idle, or stopped: a command still running ends with it (its caller reports the loss)
        try:
            if not closed:
                os.unlink(path)
        except OSError:
            pass
        for pid in children:
            _kill(pid, signal.SIGTERM)
        listener.close()
        lock.close()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _unsafe_to_fork(baseline: int) -> str | None:
    """Why a child forked now could hang or fail, or None."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA was initialised in the warm-start server (a forked child cannot use it)"
    n = _threads()
    if n > baseline:
        return (f"the warm-start server has {n} threads, {n - baseline} more than after its imports (a torch op "
                "started a thread pool, and a child forked now would hang on its first parallel op)")
    return None


def _kill(pid: int, sig: int) -> None:
    """Signal the child's process group (it leads one; the processes it starts are in it unless they start a session
    of their own, as torchrun's workers do, and it passes the signal on to them itself, as in a plain run)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _accept(listener: socket.socket, children: dict, lock, refuse: str | None = None) -> int | None:
    """Take one command's request and fork its child; with `refuse`, answer it with that reason instead (it then runs
    as a plain process)."""
    try:
        conn, _ = listener.accept()
    except OSError:  # e.g. out of descriptors: that command runs itself
        return None
    fds: list[int] = []
    try:  # the descriptors come with the message's first bytes: read those with recv_fds
        conn.settimeout(5.0)
        first, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        if len(first) < _HEADER.size or len(fds) != 3:
            raise ValueError("expected a request with stdin, stdout and stderr")
        (n,) = _HEADER.unpack(first[:_HEADER.size])
        msg = first[_HEADER.size:]
        request = json.loads(msg + _recv_exact(conn, n - len(msg)))
        conn.settimeout(None)
    except (OSError, EOFError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    if refuse is not None:
        for fd in fds:
            os.close(fd)
        try:
            _send(conn, {"refused": refuse})
        except OSError:
            pass
        conn.close()
        return None
    try:
        pid = os.fork()
    except OSError as exc:  # e.g. out of memory: the command runs itself
        pid = None
        error = str(exc)
    if pid == 0:  # the child: never returns
        _child((conn, listener, lock, *children.values()), request, fds)
    for fd in fds:
        os.close(fd)
    if pid is None:
        try:
            _send(conn, {"error": error})
        except OSError:
            pass
        conn.close()
        return None
    children[pid] = conn
    try:
        os.setpgid(pid, pid)  # as the child does: whichever runs first, its group exists before anyone signals it
    except OSError:
        pass
    try:
        _send(conn, {"pid": pid})
    except OSError:
        pass
    return pid


def _child(servers_files: tuple, request: dict, fds: list[int]) -> None:
    """Become the command (see the module docstring) and run it; never returns."""
    import signal

    server = os.getppid()
    code = 1
    try:
        for f in servers_files:  # the socket, the lock, the other commands' connections: the server's, not ours
            f.close()
        os.setpgid(0, 0)
        _on_server_death(signal.SIGTERM, server)  # a SIGKILLed server: the command ends (train saves its state)
        for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGCHLD"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for name in request.get("ignored", ()):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        os.umask(request["umask"])
        try:
            os.sched_setaffinity(0, request["cpus"])  # `taskset` on the command: torch's thread count follows it
        except OSError:
            pass
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["NETPIPE_WARM"] = "0"  # this is the command: it (and what it starts) runs here
        sys.path[:] = request["path"]
        sys.argv = list(request["argv"])
        _name(" ".join(sys.argv[1:2]))
        for name in [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]:
            del sys.modules[name]
        _fresh_streams()
        _fresh_warnings()
        if "numpy" in sys.modules:  # a fresh process seeds numpy's global generator from the OS, not a copy
            sys.modules["numpy"].random.seed()
        code = _main()
    except BaseException:
        code = 1
        try:
            import traceback

            traceback.print_exc()
        except BaseException:
            pass
    finally:
        _exit(code)


def _prctl(option: int, arg) -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(option, arg, 0, 0, 0)
    except Exception:
        pass


def _on_server_death(signum: int, server: int) -> None:
    _prctl(1, signum)  # PR_SET_PDEATHSIG
    if os.getppid() != server:  # it died before the request took effect
        os.kill(os.getpid(), signum)


def _fresh_warnings() -> None:
    """Warnings the server's imports raised are not 'already shown' for the command: a plain run shows them."""
    import warnings

    filters = list(warnings.filters)
    warnings.resetwarnings()  # marks every module's registry of shown warnings stale
    warnings.filters[:] = filters


def _name(command: str) -> None:
    """The name `ps -o comm` and top show: "netpipe train", not the server's "python3"."""
    _prctl(15, f"netpipe {command}".encode()[:15])  # PR_SET_NAME


def _fresh_streams() -> None:
    """sys.stdin/stdout/stderr as a new interpreter opens them on fds 0-2 (line-buffered on a terminal)."""
    import io

    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    _OLD_STREAMS.extend(s for s in (sys.stdout, sys.stderr) if s is not None)
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        old = getattr(sys, name)  # the server's, opened on /dev/null with the same environment: same encoding
        try:
            tty = os.isatty(fd)
            binary = io.open(fd, mode + "b", buffering=0 if (unbuffered and mode == "w") else -1, closefd=False)
            stream = io.TextIOWrapper(binary, encoding=getattr(old, "encoding", None), errors=getattr(old, "errors", None),
                                      line_buffering=tty or fd == 2 or unbuffered, write_through=unbuffered)
        except OSError:
            stream = None
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _main() -> int:
    from pipeline.cli import main

    try:
        main()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _exit(code: int) -> None:
    """End as the interpreter would (join non-daemon threads, atexit, flush), minus its module teardown (~0.5 s
    with torch loaded)."""
    import atexit
    import threading

    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr, *_OLD_STREAMS):  # the old ones: handlers made at import hold them
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code & 0xFF)  # as the interpreter maps sys.exit(-1) to 255
