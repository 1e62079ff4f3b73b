"""The warm-start server (see pipeline/warm.py, which starts it and sends it commands): it imports PRELOAD, then
forks a child per command, checking before each fork that forking is still safe (`_unsafe_to_fork`); the child
becomes the command (`_child`: its streams, directory, environment, signals, a fresh `pipeline` package) and runs
it. Linux only.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from .warm import IDLE_SECONDS, KILL_GRACE_SECONDS, PRELOAD, _HEADER, _recv_exact, _send

_OLD_STREAMS: list = []  # a child's: the server's sys.stdout and sys.stderr, which now write to the command's fds


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
            if _reap(children, dropped):
                last = time.monotonic()
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


def _reap(children: dict[int, socket.socket], dropped: dict[int, float]) -> bool:
    """Collect the children that have exited and send each one's command its exit code or signal; True if any had."""
    reaped = False
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        conn = children.pop(pid, None)
        dropped.pop(pid, None)
        reaped = True
        if conn is None:
            continue
        reply = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                 else {"exit": os.waitstatus_to_exitcode(status)})
        try:
            _send(conn, reply)
        except OSError:
            pass
        conn.close()
    return reaped


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
