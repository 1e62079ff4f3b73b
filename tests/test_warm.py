"""Warm start (pipeline/warm.py): stage commands forked from a server that has imported torch.

Each test runs the real server on a copy of the package (so a test can edit the code the next command runs), with
its sockets in the test's own directory, through `python -c` calling warm.run as the `netpipe` command does (so the
test can tell a served command, an int, from one the caller must run itself, None)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pipeline import warm
from tests.procs import pythonpath

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="warm start is Linux-only")

CLIENT = """
import sys
from pipeline import warm
code = warm.run(['netpipe', *sys.argv[1:]])
if code is None:
    from pipeline import cli
    cli.main()
    sys.exit(0)
print(f'served={code}', file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def copy(tmp_path):
    """A project directory with its own copy of the package and params.yaml, and its own socket directory."""
    root = tmp_path / "proj"
    shutil.copytree(ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    runtime = Path(tempfile.mkdtemp(prefix="nw", dir="/tmp"))  # short: a socket's path must fit in 107 bytes
    env = {**os.environ, "PYTHONPATH": pythonpath(root), "XDG_RUNTIME_DIR": str(runtime), "NETPIPE_WARM": "1",
           "NETPIPE_WARM_IDLE": "30"}
    env.pop("DVC_STAGE", None)
    yield root, env, runtime
    for lock in runtime.glob("netpipe-warm-*/*.lock"):  # end the test's servers (they would idle out anyway)
        _stop(lock)
    shutil.rmtree(runtime, ignore_errors=True)


def _stop(lock: Path) -> None:
    for line in subprocess.run(["pgrep", "-f", str(lock.with_suffix(""))], capture_output=True, text=True).stdout.split():
        try:
            os.kill(int(line), signal.SIGTERM)
        except ProcessLookupError:  # a server that lost the lock to another has exited meanwhile
            pass


def _client(root: Path, env: dict, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLIENT, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120, **kw)


def _served(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the command until a server serves it (the first call starts the server and runs the command itself)."""
    deadline = time.monotonic() + 180
    while True:
        r = _client(root, env, *args)
        if "served=" in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(1)


def test_a_served_command_ends_as_the_plain_command_does(copy):
    root, env, _ = copy
    plain = subprocess.run([sys.executable, "-m", "pipeline", "evaluate", "no_such_variant"], cwd=root,
                           env={**env, "NETPIPE_WARM": "0"}, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and "no_such_variant" in plain.stderr, plain.stderr
    r = _served(root, env, "evaluate", "no_such_variant")
    assert "served=2" in r.stderr, r.stderr
    assert r.returncode == plain.returncode
    assert r.stderr.replace("served=2\n", "") == plain.stderr and r.stdout == plain.stdout


def test_a_served_command_runs_the_code_on_disk_now(copy):
    """The server imports no netpipe code: a command served after an edit runs the edited code."""
    root, env, _ = copy
    assert "served=" in _served(root, env, "evaluate", "no_such_variant").stderr
    cli = root / "pipeline" / "errors.py"
    cli.write_text(cli.read_text().replace("class NetpipeError(Exception):",
                                           "print('edited code ran')\n\n\nclass NetpipeError(Exception):"))
    r = _client(root, env, "evaluate", "no_such_variant")
    assert "served=2" in r.stderr and r.stdout == "edited code ran\n", (r.stdout, r.stderr)


def _sleepy(root: Path) -> None:
    """`netpipe evaluate sleepy` writes its pid to sleepy.pid and sleeps (inside cli.main's error handling)."""
    cli = root / "pipeline" / "cli.py"
    hook = ("def run_typer() -> Optional[int]:\n"
            "    if sys.argv[1:] == ['evaluate', 'sleepy']:\n"
            "        import time\n"
            "        Path('sleepy.pid').write_text(str(os.getpid()))\n"
            "        time.sleep(300)\n")
    text = cli.read_text()
    assert "def run_typer() -> Optional[int]:\n" in text
    cli.write_text(text.replace("def run_typer() -> Optional[int]:\n", hook))


def _start_sleepy(root: Path, env: dict, **popen) -> tuple[subprocess.Popen, int]:
    assert "served=" in _served(root, env, "evaluate", "no_such_variant").stderr
    (root / "sleepy.pid").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, "evaluate", "sleepy"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    deadline = time.monotonic() + 60
    while not (root / "sleepy.pid").exists() or not (root / "sleepy.pid").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    child = int((root / "sleepy.pid").read_text())
    assert child != proc.pid  # forked by the server
    return proc, child


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_and_sigterm_reach_the_served_command(copy):
    root, env, _ = copy
    _sleepy(root)
    proc, child = _start_sleepy(root, env)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: netpipe's own handling, as in a plain process
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "netpipe: interrupted" in err, err
    assert _gone(child, 10)

    proc, child = _start_sleepy(root, env)
    proc.send_signal(signal.SIGTERM)  # no handler: the command ends by the signal, and so does its caller
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert _gone(child, 10)


def test_a_killed_command_takes_its_child_with_it(copy):
    """SIGKILL cannot be passed on: the server sees the command's connection close and ends the child."""
    root, env, _ = copy
    _sleepy(root)
    proc, child = _start_sleepy(root, env)
    proc.kill()
    proc.communicate(timeout=60)
    assert _gone(child, warm.KILL_GRACE_SECONDS + 10)


def test_warm_start_is_for_the_quick_checks_stages_under_dvc_unless_asked(monkeypatch, tmp_path):
    """On by default only for a DVC stage of the quick check (where start-up is most of the work), read from the
    params file the command names; a full run's stages are plain processes unless NETPIPE_WARM=1."""
    import yaml

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETPIPE_WARM", raising=False)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))  # quick.enabled: false
    raw["quick"]["enabled"] = True
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(raw))
    assert not warm.wanted(["netpipe", "train", "v", "-p", "quick.yaml"])  # by hand: a plain process
    monkeypatch.setenv("DVC_STAGE", "train@v")
    assert not warm.wanted(["netpipe", "train", "v"])  # a full run's stage
    assert warm.wanted(["netpipe", "train", "v", "-p", "quick.yaml"])
    assert warm.wanted(["netpipe", "train", "v", "--params=quick.yaml"])
    assert not warm.wanted(["netpipe", "train", "v", "-p", "missing.yaml"])  # the plain command reports it
    assert not warm.wanted(["netpipe", "predict", "x.png"]) and not warm.wanted(["netpipe"])
    monkeypatch.setenv("NETPIPE_WARM", "0")
    assert not warm.wanted(["netpipe", "train", "v", "-p", "quick.yaml"])
    monkeypatch.delenv("DVC_STAGE")
    monkeypatch.setenv("NETPIPE_WARM", "1")
    assert warm.wanted(["netpipe", "export", "v"])


@pytest.mark.parametrize("spoil, reason", [
    ("matmul", r"the warm-start server has \d+ threads, \d+ more than after its imports \(a torch op started a thread "
               r"pool, and a child forked now would hang on its first parallel op\)"),
    ("cuda", r"CUDA was initialised in the warm-start server \(a forked child cannot use it\)"),
])
def test_the_server_refuses_to_fork_after_a_torch_op_or_cuda(copy, spoil, reason):
    """A torch op run in the server (its OpenMP pool started) or CUDA initialised there: the next command is told why
    in one line and runs as a plain process (same output, same exit code), and the server takes no more."""
    import re

    if spoil == "matmul" and (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the OpenMP pool starts no thread")
    root, env, runtime = copy
    env = {**env, "NETPIPE_TEST_WARM_SERVER": spoil, "PYTHONPATH": pythonpath(ROOT / "tests" / "hooks", root)}
    plain = subprocess.run([sys.executable, "-m", "pipeline", "evaluate", "no_such_variant"], cwd=root,
                           env={**env, "NETPIPE_WARM": "0"}, capture_output=True, text=True, timeout=120)
    r = _client(root, env, "evaluate", "no_such_variant")  # starts the server and runs itself while it imports
    deadline = time.monotonic() + 180
    while not list(runtime.glob("netpipe-warm-*/*.sock")) and time.monotonic() < deadline:
        time.sleep(0.1)
    while True:  # (a command that comes between its bind and its listen runs itself too)
        r = _client(root, env, "evaluate", "no_such_variant")
        assert "served=" not in r.stderr, r.stderr
        if "warm start off" in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    line, rest = r.stderr.split("\n", 1)
    assert re.fullmatch(rf"netpipe: warm start off: {reason}; running this command as a plain process", line), line
    assert (r.returncode, r.stdout, rest) == (plain.returncode, plain.stdout, plain.stderr)
    deadline = time.monotonic() + 30
    while list(runtime.glob("netpipe-warm-*/*.sock")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(runtime.glob("netpipe-warm-*/*.sock")), "the server still listens"


def test_a_server_serves_one_environment(monkeypatch):
    """What may have been read at import time (any variable, sys.path, the interpreter) picks the server; the
    variables DVC or the shell set per command do not."""
    key = warm._key()
    monkeypatch.setenv("DVC_STAGE", "train@somevariant")
    monkeypatch.setenv("SHLVL", "7")
    assert warm._key() == key
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert warm._key() != key
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert warm._key() == key
    monkeypatch.setattr(sys, "path", [*sys.path, "/elsewhere"])
    assert warm._key() != key


def test_no_private_socket_directory_means_a_plain_run(monkeypatch):
    base = Path(tempfile.mkdtemp(prefix="nw", dir="/tmp"))
    try:
        shared = base / f"netpipe-warm-{os.getuid()}"
        shared.mkdir()
        shared.chmod(0o777)  # others could write here: not used
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
        assert warm.socket_dir() is None
        assert warm.run(["netpipe", "train", "v"]) is None
        assert not list(shared.iterdir())
    finally:
        shutil.rmtree(base)


def test_a_stopped_server_ends_its_commands_and_they_say_so(copy):
    root, env, runtime = copy
    _sleepy(root)
    proc, child = _start_sleepy(root, env)
    for lock in runtime.glob("netpipe-warm-*/*.lock"):
        _stop(lock)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "lost the warm-start server" in err, err
    assert _gone(child, 10)


def test_a_signal_the_command_ignores_stays_ignored(copy):
    """`nohup dvc repro &`: SIGHUP ignored by the command is ignored by its child too, as by a plain process."""
    root, env, _ = copy
    _sleepy(root)
    proc, child = _start_sleepy(root, env, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    proc.send_signal(signal.SIGHUP)
    os.kill(child, signal.SIGHUP)
    time.sleep(1)
    assert proc.poll() is None and not _gone(child, 0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM and _gone(child, 10)
