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
