"""`./run stack` (tests/support/roamtest/stack.py): comes up, prints what a developer needs
(wss URL, CA file, admin URLs, dev tokens that work) and stops everything on SIGINT."""

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets

from roamtest.process import REPO, find_binary, read_text, wait_until
from roamtest.sigclient import run

STACK = os.path.join(REPO, "tests", "support", "roamtest", "stack.py")


def test_stack_prints_working_endpoints_and_stops_on_sigint(tmp_path):
    for tool in ("redis-server", "turnserver"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/bin/{tool}"):
            pytest.skip(f"{tool} not installed")
    find_binary("roam-signaling")
    out_path = tmp_path / "stack.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, STACK, "--listen", "127.0.0.1:0",
                                 "--admin-listen", "127.0.0.1:0", "--pool-target", "2"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text = wait_until(lambda: "bob:" in read_text(out_path) and read_text(out_path), 20,
                          interval=0.05, what="the stack's banner")
        url = re.search(r"signaling\s+(wss://\S+)", text).group(1)
        ca_file = re.search(r"CA file\s+(\S+)", text).group(1)
        health = re.search(r"admin\s+(http://\S+/healthz)", text).group(1)
        files = re.search(r"files\s+(\S+)", text).group(1)
        token = re.search(r"alice: (\S+)", text).group(1)

        async def hello():
            context = ssl.create_default_context(cafile=ca_file)
            async with websockets.connect(url, ssl=context) as ws:
                await ws.send('{"type":"hello","version":1,"token":"%s"}' % token)
                return await ws.recv()
        assert '"type":"welcome"' in run(hello()).replace(" ", "")
        with urllib.request.urlopen(health, timeout=3) as response:
            assert response.status == 200

        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(15) == 0, read_text(out_path)
        assert time.monotonic() - started < 10
        assert not os.path.exists(files), "temporary directory left behind"
        assert not _processes_mentioning(files), "a server outlived the stack"
        assert "stack: stopped" in read_text(out_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _processes_mentioning(text):
    """pids whose command line contains text (roam-signaling's names the stack's cert)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found
