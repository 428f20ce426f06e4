import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from roamtest.servers import Coturn  # noqa: E402

BIN_DIR = os.environ.get("ROAM_BIN_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not built (./run build)")
    return path


@pytest.fixture
def coturn():
    try:
        server = Coturn()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield server
    server.close()


# --- roam-signaling fixtures (tests/integration/test_signaling_*.py) -------------------------

from roamtest.process import find_binary  # noqa: E402
from roamtest.redis import RedisServer  # noqa: E402
from roamtest.relay import RoamRelay  # noqa: E402
from roamtest.signaling import RoamSignaling, TlsCert  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item so fixtures can print server logs on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request):
    report = getattr(request.node, "rep_call", None)
    return report is None or report.failed


@pytest.fixture(scope="session")
def tls_cert():
    """One self-signed certificate for the whole session (openssl is the slow part)."""
    return TlsCert.shared()


@pytest.fixture
def redis_server():
    try:
        server = RedisServer()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield server
    server.close()


@pytest.fixture
def relay_stack_of(redis_server):
    """Factory: relay_stack_of(pool_target, relay_ports) starts coturn + roam-relay registered
    in redis_server with the pool filled; returns (coturn, relay), stopped after the test."""
    started = []

    def start(pool_target=6, relay_ports=100):
        try:
            turn = Coturn(relay_ports=relay_ports)
        except FileNotFoundError as e:
            pytest.skip(str(e))
        started.append(turn)
        relay = RoamRelay(turn, redis_server, pool_target=pool_target, wait_pool=True)
        started.append(relay)
        return turn, relay

    yield start
    for server in reversed(started):
        server.close()


@pytest.fixture
def relay_stack(relay_stack_of):
    """coturn + roam-relay registered in redis_server, pool filled: (coturn, relay)."""
    return relay_stack_of()


@pytest.fixture
def signaling(request, tls_cert):
    """Factory: signaling(redis_port, instance=None, options=[...], cert=None) starts a
    roam-signaling (with the session's certificate unless `cert` is given);
    every instance is stopped after the test (logs printed when the test failed)."""
    try:
        find_binary("roam-signaling")
    except FileNotFoundError as e:
        pytest.fail(str(e))
    started = []

    def start(redis_port, **kwargs):
        kwargs.setdefault("cert", tls_cert)
        server = RoamSignaling(redis_port, start=False, **kwargs)
        started.append(server)  # before start(): a failed start is cleaned up too
        return server.start()

    yield start
    failed = _failed(request)
    for server in started:
        server.process.stop()
        if failed:
            print(server.log())
        server.close()
