"""deploy/ offline: the compose file (Debian's docker-compose, no Docker engine), haproxy and
Prometheus configurations, Grafana provisioning and the dashboard's structure. Whether the
dashboard's metrics really exist is checked against live scrapes in test_deploy_stack.py."""

import json
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "roam.json")


def tool(name, package):
    path = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None)
    if not path:
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return path


def compose_files():
    return sorted(os.path.join(DEPLOY, f) for f in os.listdir(DEPLOY)
                  if re.fullmatch(r"docker-compose.*\.ya?ml", f))


def compose(*args, env_file=None):
    argv = [tool("docker-compose", "docker-compose")]
    if env_file:
        argv += ["--env-file", env_file]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER")}
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30,
                          cwd=DEPLOY, env=env)


def test_every_compose_file_validates_offline_with_the_example_env():
    files = compose_files()
    assert files, "no deploy/docker-compose*.yml"
    for f in files:
        result = compose("-f", f, "config", "-q", env_file=os.path.join(DEPLOY, "env.example"))
        assert result.returncode == 0, (f, result.stderr)


def test_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("-f", os.path.join(DEPLOY, "docker-compose.yml"), "config", "-q",
                     env_file=str(empty))
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr or "TURN_SECRET" in result.stderr, result.stderr


def test_compose_topology():
    result = compose("-f", os.path.join(DEPLOY, "docker-compose.yml"), "config",
                     env_file=os.path.join(DEPLOY, "env.example"))
    assert result.returncode == 0, result.stderr
    import yaml  # python3-yaml: a dependency of docker-compose

    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"redis", "coturn", "roam-relay", "signaling-1", "signaling-2", "lb", "prometheus",
            "grafana"} <= set(services)
    assert services["coturn"]["image"].startswith("coturn/coturn")
    assert any("relay/coturn/turnserver.conf" in v["source"] if isinstance(v, dict) else
               "relay/coturn/turnserver.conf" in v for v in services["coturn"]["volumes"])
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    # Secrets come from the env file, never from the compose file itself.
    env = services["signaling-1"]["environment"]
    assert env["ROAM_SIGNALING_JWT_SECRET"].startswith("CHANGE-ME")
    assert services["signaling-1"]["environment"]["ROAM_SIGNALING_INSTANCE_ID"] != \
        services["signaling-2"]["environment"]["ROAM_SIGNALING_INSTANCE_ID"]
    # Every file or directory the services mount from the repository exists (the TLS
    # directory is the operator's).
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if os.path.isabs(source) and not source.endswith("/tls"):
                assert os.path.exists(source), (name, source)
    # Named volumes only where state must survive: metrics history and Grafana.
    assert set(config.get("volumes", {})) == {"prometheus-data", "grafana-data"}
    for name in ("signaling-1", "signaling-2", "roam-relay"):
        assert services[name]["build"]["target"] in ("roam-signaling", "roam-relay")


def test_dockerfile_builds_three_non_root_runtime_images():
    text = open(os.path.join(DEPLOY, "docker", "Dockerfile")).read()
    stages = re.findall(r"^FROM (\S+) AS (\S+)", text, re.M)
    assert ("debian:12", "build") in stages
    names = {s for _, s in stages}
    assert {"roam-signaling", "roam-relay", "roam"} <= names
    for stage in ("roam-signaling", "roam-relay", "roam"):
        body = text.split(f"AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert "USER roam" in body, stage
        assert "COPY --from=build" in body, stage
    assert re.search(r"^FROM debian:12-slim AS runtime", text, re.M)


def dockerfile_packages():
    """{stage: [packages]} of the Dockerfile's apt-get install lines."""
    text = open(os.path.join(DEPLOY, "docker", "Dockerfile")).read()
    stages = {}
    for block in re.split(r"^FROM ", text, flags=re.M)[1:]:
        name = block.split()[2] if " AS " in block.splitlines()[0] else block.split()[0]
        m = re.search(r"apt-get install -y --no-install-recommends(.*?)(?:&&|$)",
                      block.replace("\\\n", " "), re.S)
        if m:
            stages[name] = m.group(1).split()
    return stages


def test_dockerfile_installs_the_projects_debian_packages():
    stages = dockerfile_packages()
    assert set(stages) == {"build", "runtime"}, stages
    run_script = open(os.path.join(REPO, "run")).read()
    listed = set(re.sub(r"#.*", "", run_script.split("PACKAGES=(", 1)[1].split(")", 1)[0]).split())
    missing = [p for p in stages["build"] if p not in listed]
    assert not missing, f"build stage installs packages ./run deps does not: {missing}"
    apt_cache = shutil.which("apt-cache")
    if apt_cache:
        wanted = set(stages["build"] + stages["runtime"])
        result = subprocess.run([apt_cache, "show", "--no-all-versions", *sorted(wanted)],
                                capture_output=True, text=True, timeout=60)
        known = set(re.findall(r"^Package: (\S+)$", result.stdout, re.M))
        assert wanted <= known, f"not Debian 12 packages: {sorted(wanted - known)}"


def test_haproxy_config_parses():
    haproxy = tool("haproxy", "haproxy")
    result = subprocess.run([haproxy, "-c", "-f", os.path.join(DEPLOY, "haproxy", "haproxy.cfg")],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "mode tcp" in open(os.path.join(DEPLOY, "haproxy", "haproxy.cfg")).read()


def test_promtool_checks_the_prometheus_config():
    promtool = tool("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "config",
                             os.path.join(DEPLOY, "prometheus", "prometheus.yml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    import yaml

    config = yaml.safe_load(open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"prometheus", "roam-signaling", "roam-relay", "haproxy", "roam-agent"} <= jobs
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    assert "signaling-1:9643" in targets and "signaling-2:9643" in targets


def test_grafana_provisioning_points_at_the_dashboard_and_datasource():
    import yaml

    prov = os.path.join(DEPLOY, "grafana", "provisioning")
    ds = yaml.safe_load(open(os.path.join(prov, "datasources", "prometheus.yml")))
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["type"] == "prometheus"
    boards = yaml.safe_load(open(os.path.join(prov, "dashboards", "roam.yml")))
    assert boards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.load(open(DASHBOARD))
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_dashboard_structure():
    dash = json.load(open(DASHBOARD))
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for needed in ("connected agents", "session", "relay-grant latency", "token pool per relay",
                   "pool misses", "relayed traffic", "errors by code", "coturn up", "redis",
                   "active path kind", "path switches", "blackout"):
        assert needed in titles, needed
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
