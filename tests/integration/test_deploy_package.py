"""`./run package`: CPack builds roam-signaling, roam-relay and roam .debs from the build tree
(cmake/Packaging.cmake). The packages are unpacked into a throwaway root (dpkg-deb -x; no
dpkg database or chroot needed), their control data and maintainer scripts checked, and the
installed binaries started with the installed default configurations."""

import os
import re
import shutil
import socket
import subprocess
import urllib.request

import pytest

from roamtest.process import Process, bin_dir, wait_until
from roamtest.redis import RedisServer
from roamtest.servers import free_port
from roamtest.signaling import READY, TlsCert

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(bin_dir()))
PACKAGES = {
    "roam-signaling": {"bin": "usr/bin/roam-signaling",
                       "unit": "lib/systemd/system/roam-signaling.service",
                       "etc": ["etc/roam/signaling.toml", "etc/roam/signaling.env"]},
    "roam-relay": {"bin": "usr/bin/roam-relay",
                   "unit": "lib/systemd/system/roam-relay.service",
                   "etc": ["etc/roam/relay.toml", "etc/roam/relay.env"]},
    "roam": {"bin": "usr/bin/roam", "unit": "lib/systemd/system/roam-agent.service",
             "etc": ["etc/roam/agent.toml", "etc/roam/agent.env"],
             "extra": ["usr/share/man/man1/roam.1"]},
}


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} not installed (apt-get install {package})")
    return path


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    if not os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")):
        pytest.skip(f"{BUILD} has no CPackConfig.cmake (reconfigure: ./run build)")
    need("dpkg-deb", "dpkg")
    need("dpkg-shlibdeps", "dpkg-dev")
    out = tmp_path_factory.mktemp("debs")
    result = subprocess.run(["cpack", "-G", "DEB", "-B", str(out)], cwd=BUILD,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    found = {}
    for deb in out.rglob("*.deb"):
        package = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"],
                                 capture_output=True, text=True).stdout.strip()
        found[package] = str(deb)
    assert set(found) == set(PACKAGES), found
    return found


@pytest.fixture(scope="module")
def root(debs, tmp_path_factory):
    """The throwaway root every package is unpacked into."""
    root = tmp_path_factory.mktemp("root")
    for deb in debs.values():
        subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True, timeout=30)
    return root


def control(deb, tmp_path):
    directory = tmp_path / ("control-" + os.path.basename(deb))
    subprocess.run(["dpkg-deb", "-e", deb, str(directory)], check=True, timeout=30)
    return directory


def test_packages_carry_binaries_units_configs_and_dependencies(debs, tmp_path):
    for package, spec in PACKAGES.items():
        deb = debs[package]
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                                 check=True).stdout
        paths = {line.split()[-1].lstrip("./") for line in listing.splitlines()}
        for path in [spec["bin"], spec["unit"], *spec["etc"], *spec.get("extra", [])]:
            assert path in paths, (package, path, sorted(paths))
        depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                                 text=True, check=True).stdout
        assert "libc6" in depends and "adduser" in depends, depends
        ctl = control(deb, tmp_path)
        conffiles = (ctl / "conffiles").read_text().split()
        assert sorted(conffiles) == sorted("/" + p for p in spec["etc"]), conffiles
        for script in ("postinst", "prerm", "postrm"):
            path = ctl / script
            assert os.access(path, os.X_OK), (package, script)
            subprocess.run(["sh", "-n", str(path)], check=True)
            text = path.read_text()
            assert "@" not in text.replace("@example", ""), (package, script, text)
        postinst = (ctl / "postinst").read_text()
        assert "adduser --system" in postinst and "chown root:roam /etc/roam" in postinst
        unit = os.path.basename(spec["unit"])
        assert unit in (ctl / "prerm").read_text()
        # Secrets files are not world-readable in the package.
        for line in listing.splitlines():
            if line.split()[-1].endswith(".env"):
                assert line.split()[0][-3:] == "---", line


def test_docker_runtime_image_has_every_shared_library_package(debs):
    """The Dockerfile's runtime stage installs what dpkg-shlibdeps found for the .debs."""
    text = open(os.path.join(REPO, "deploy", "docker", "Dockerfile")).read()
    block = text.split("AS runtime", 1)[1].split("\nFROM ", 1)[0].replace("\\\n", " ")
    runtime = set(re.search(r"--no-install-recommends(.*?)&&", block, re.S).group(1).split())
    provided = set(runtime)
    for package in runtime:
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Provides}", package],
                                capture_output=True, text=True)
        provided |= {p.split()[0] for p in result.stdout.split(",") if p.strip()}
    # In debian:12-slim already (essential or required).
    base = {"adduser", "libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
    for package, deb in debs.items():
        depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                                 text=True, check=True).stdout
        names = {d.split()[0] for d in depends.split(",") if d.strip()}
        missing = sorted(names - provided - base)
        assert not missing, f"{package}: Dockerfile runtime stage lacks {missing}"


def test_postinst_creates_the_user_and_protects_secrets(debs, tmp_path):
    """Runs each postinst with every command it calls replaced by a stub that records its
    arguments (nothing touches this machine): a fresh install creates the system group and
    user roam, /var/lib/roam, and makes /etc/roam root:roam 0750."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    for command in ("getent", "addgroup", "adduser", "mkdir", "chown", "chmod", "systemctl"):
        stub = stubs / command
        # getent finds nobody: the user does not exist yet.
        status = 2 if command == "getent" else 0
        stub.write_text(f'#!/bin/sh\necho "{command} $*" >> "{log}"\nexit {status}\n')
        stub.chmod(0o755)
    for package, deb in debs.items():
        log.write_text("")
        ctl = control(deb, tmp_path)
        result = subprocess.run(["sh", str(ctl / "postinst"), "configure", ""],
                                capture_output=True, text=True, timeout=10,
                                env={"PATH": f"{stubs}:/usr/bin:/bin"})
        assert result.returncode == 0, (package, result.stderr)
        calls = log.read_text()
        assert "addgroup --system --quiet roam" in calls, calls
        assert re.search(r"^adduser --system .*--ingroup roam .* roam$", calls, re.M), calls
        assert "chown roam:roam /var/lib/roam" in calls, calls
        assert "chown root:roam /etc/roam" in calls and "chmod 0750 /etc/roam" in calls, calls
        assert "systemctl restart" not in calls, calls  # a fresh install is never started
        if package == "roam":
            assert "mkdir -p /var/lib/roam/incoming" in calls, calls


def unit_fields(path):
    fields = {}
    section = None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        fields.setdefault((section, key), []).append(value)
    return fields


def test_systemd_units_run_the_installed_binaries_as_roam(root):
    for package, spec in PACKAGES.items():
        fields = unit_fields(root / spec["unit"])
        exec_start = fields[("Service", "ExecStart")][0].split()
        assert os.access(root / exec_start[0].lstrip("/"), os.X_OK), exec_start
        config = exec_start[exec_start.index("--config") + 1]
        assert (root / config.lstrip("/")).is_file(), config
        assert fields[("Service", "User")] == ["roam"]
        assert fields[("Install", "WantedBy")] == ["multi-user.target"]
        assert ("Service", "Restart") in fields


def test_systemd_analyze_verifies_the_units(root, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    units = []
    for spec in PACKAGES.values():
        text = (root / spec["unit"]).read_text().replace("/usr/bin/", f"{root}/usr/bin/")
        path = tmp_path / os.path.basename(spec["unit"])
        path.write_text(text)
        units.append(str(path))
    result = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True,
                            text=True, timeout=30)
    # Unknown keys are only warnings for systemd: fail on any output about the units.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if tmp_path.name in line or ".service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_installed_signaling_starts_with_the_installed_config(root, tmp_path):
    cert = TlsCert.shared()
    redis = RedisServer()
    process = Process(
        [str(root / "usr/bin/roam-signaling"), "--config", str(root / "etc/roam/signaling.toml"),
         "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
         "--cert", cert.cert_file, "--key", cert.key_file, "--redis", redis.address],
        str(tmp_path), "installed-signaling",
        env={"ROAM_SIGNALING_JWT_SECRET": "x" * 40, "ROAM_SIGNALING_TURN_SECRET": "y" * 20})
    try:
        process.start()
        match = wait_until(lambda: READY.search(process.stdout()) or not process.alive(), 10,
                           what="installed roam-signaling ready")
        assert match is not True, process.log()
        admin = f"http://{match.group(3)}:{match.group(4)}"
        with urllib.request.urlopen(admin + "/healthz", timeout=3) as r:
            assert r.status == 200 and b'"status":"ok"' in r.read()
    finally:
        process.stop()
        redis.close()


def test_installed_relay_starts_with_the_installed_config(root, tmp_path):
    redis = RedisServer()
    port = free_port(socket.SOCK_STREAM)
    process = Process(
        [str(root / "usr/bin/roam-relay"), "--config", str(root / "etc/roam/relay.toml"),
         "--metrics", f"127.0.0.1:{port}", "--redis", redis.address,
         "--coturn", f"127.0.0.1:{free_port()}"],
        str(tmp_path), "installed-relay", env={"ROAM_RELAY_SECRET": "z" * 20})

    def metrics():
        if not process.alive():
            return "dead"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    try:
        process.start()
        text = wait_until(metrics, 10, what="installed roam-relay /metrics")
        assert text != "dead", process.log()
        assert re.search(r"^roam_relay_coturn_up ", text, re.M), text[:500]
    finally:
        process.stop()
        redis.close()


def test_installed_agent_runs_and_accepts_its_config(root, tmp_path):
    roam = str(root / "usr/bin/roam")
    result = subprocess.run([roam, "--help"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0
    for command in ("send", "recv", "pipe", "perf", "status", "doctor"):
        assert command in result.stdout, command
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    config = tmp_path / "agent.toml"
    text = (root / "etc/roam/agent.toml").read_text()
    # The service's configuration, pointed at this test's directories and at a closed port.
    text = text.replace("/var/lib/roam/incoming", str(tmp_path / "in"))
    text = text.replace("/etc/roam/agent.token", str(token))
    text = text.replace("wss://signal.example.com/", f"wss://127.0.0.1:{free_port(socket.SOCK_STREAM)}/")
    config.write_text(text)
    (tmp_path / "in").mkdir()
    # The installed keys are read: the token file they name is required.
    missing = tmp_path / "missing.toml"
    missing.write_text(text.replace(str(token), str(tmp_path / "no-token")))
    result = subprocess.run([roam, "--config", str(missing), "recv"], capture_output=True,
                            text=True, timeout=10)
    assert result.returncode == 2 and "--token-file" in result.stderr, result.stderr
    process = Process([roam, "--config", str(config), "recv", "--interface", "lo", "--loopback"],
                      str(tmp_path), "installed-agent", env={"ROAM_STATUS_DIR": str(tmp_path)})
    try:
        process.start()
        # A rejected option or configuration key exits 2 at once; a valid configuration keeps
        # the agent retrying the (closed) signaling port like the service would.
        assert process.wait(1.5) is None, process.log()
    finally:
        process.stop()
