"""Child processes for tests: output in files (never a pipe that could fill up and stall the
server), a process group of their own so a kill reaches every child, and polling helpers so
tests wait for a condition instead of sleeping for a guessed time."""

import os
import signal
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def bin_dir():
    """ROAM_BIN_DIR (set by ctest and `./run stack`) wins; else the default build tree."""
    return os.environ.get("ROAM_BIN_DIR", os.path.join(REPO, "build", "bin"))


def find_binary(name):
    """Path of one of our built binaries; FileNotFoundError names the fix when missing."""
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} not built (./run build)")
    return path


def find_system_binary(name, package):
    """Path of a Debian-packaged tool; FileNotFoundError tells which package to install."""
    for directory in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"{name} not installed (apt-get install {package})")


def wait_until(check, timeout, interval=0.02, what="condition"):
    """Polls check() until it returns something truthy; returns that value. TimeoutError
    (naming `what`) after `timeout` seconds: tests fail with a reason, never hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Process:
    """One child with stdout and stderr in files under `directory`."""

    def __init__(self, argv, directory, name, env=None):
        self.argv, self.dir, self.name = list(argv), directory, name
        self.env = env
        self.stdout_path = os.path.join(directory, f"{name}.stdout")
        self.stderr_path = os.path.join(directory, f"{name}.stderr")
        self.proc = None

    def start(self):
        """Starts (or restarts) the child; the old output is kept, new output appended."""
        environment = dict(os.environ)
        if self.env:
            environment.update(self.env)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=environment,
                                         start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return self.proc.poll() if self.proc else None

    def stdout(self):
        return read_text(self.stdout_path)

    def log(self):
        """Everything the process wrote, for assertion messages."""
        return (f"--- {self.name} {' '.join(self.argv)}\n--- stdout\n{self.stdout()}"
                f"--- stderr\n{read_text(self.stderr_path)}")

    def signal(self, signum):
        """Signals the whole process group (a no-op when it already exited)."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """Exit status, or None if it is still running after `timeout` seconds."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL: the crash a test simulates (no graceful shutdown runs)."""
        self.signal(signal.SIGKILL)
        self.wait(5)

    def stop(self, grace=3):
        """SIGTERM, then SIGKILL after `grace` seconds: always leaves nothing running."""
        if not self.alive():
            return self.returncode()
        self.signal(signal.SIGTERM)
        code = self.wait(grace)
        if code is None:
            self.kill()
        return self.returncode()
