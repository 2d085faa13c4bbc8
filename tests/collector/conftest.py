"""Fixtures shared by the collector's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collector.network.config import CliConfig
from schoolops.units import Seconds
from tests.fake_cli_device import FakeDeviceServer, start_fake_device


@pytest.fixture
async def switch(tmp_path: Path) -> AsyncIterator[tuple[FakeDeviceServer, CliConfig]]:
    """The fake Cisco switch on a free loopback port, and the CLI config that reaches it (host key known)."""
    server, port, host_key_line = await start_fake_device(port=0, hostname="sw-lab-1")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(host_key_line + "\n")
    config = CliConfig(device_type="cisco_ios", username=server.device.username, known_hosts=str(known_hosts),
                       port=port, password_secret="sw-lab-1.password", enable_secret="sw-lab-1.enable",
                       timeout=Seconds(10))
    try:
        yield server, config
    finally:
        await server.stop()
