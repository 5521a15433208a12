"""The chaos soak: random kill -9, SIGTERM and SIGSTOP/SIGCONT with restarts while files keep coming.

`make test` runs it for SOAK_SECONDS=30 on each broker; `make soak` for 300.
"""

from __future__ import annotations

import os

import pytest
from soak import Soak
from test_e2e import BROKERS, require_service

from tasks.cluster import LocalCluster

pytestmark = [pytest.mark.soak, pytest.mark.e2e]


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_chaos_soak_loses_nothing(tmp_path, broker):
    if BROKERS[broker]:
        require_service(broker)
    seconds = float(os.environ.get("SOAK_SECONDS", "30"))
    cluster = LocalCluster(
        tmp_path / "home",
        broker_url=BROKERS[broker],
        heartbeat_timeout=2.0,
        heartbeat_interval=0.5,
        reap_interval=0.5,
        # Kills land on files in progress; this soak checks recovery, not the poison quarantine.
        env={"COORDINATOR_MAX_WORKER_LOSSES": "1000"},
    )
    soak = Soak(cluster, workers=4, seconds=seconds, mean_gap=max(3.0, seconds / 40), seed=int(seconds))

    report = soak.run()

    print(f"\nchaos soak on {broker}, {seconds:g} s:\n{report.table()}")
    assert report.deaths, "the soak killed nothing"
    assert report.violations == []
    assert report.lost == []
    assert all(d.recovered_after is not None for d in report.deaths), "a death never recovered"
