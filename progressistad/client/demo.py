"""`progressista demo`: a few lively bars to try the dashboard; one stalls, one fails."""

from __future__ import annotations

import random
import socket
import time
from typing import Any, List

from progressistad.client.remote import RemoteTqdm


def run_demo(seconds: float, remote: dict, seed: int = 0) -> int:
    """Run the demo bars for about `seconds`; 0 when done."""
    rng = random.Random(seed)
    prefix = f"demo-{socket.gethostname()}"
    ticks = max(10, int(seconds / 0.1))
    chunks = [rng.randint(200, 900) * 1024 for _ in range(ticks)]
    download, train, stalled, etl = _open_bars(prefix, ticks, sum(chunks), remote)
    try:
        for tick in range(ticks):
            download.update(chunks[tick])
            if tick % 5 == 0:
                _epoch(train, prefix, remote)
            if tick < ticks // 3:
                stalled.update(1)
            if etl is not None:
                etl = _etl_step(etl, tick, ticks)
            time.sleep(seconds / ticks)
    finally:
        if etl is not None:
            etl.close()
        download.close()
        train.close()
        stalled.remote_detach()  # left open on purpose: the dashboard marks it stale
        stalled.close()
    return 0


def _open_bars(prefix: str, ticks: int, download_bytes: int, remote: dict) -> List[Any]:
    return [
        RemoteTqdm(total=download_bytes, desc="Downloading dataset", unit="B", unit_scale=True,
                   unit_divisor=1024, task_id=f"{prefix}:download", position=0, **remote),
        RemoteTqdm(total=(ticks + 4) // 5, desc="Training", unit="epoch", task_id=f"{prefix}:train",
                   position=1, **remote),
        RemoteTqdm(total=ticks, desc="Rsync to backup host (stalls)", task_id=f"{prefix}:stalled",
                   position=2, **remote),
        RemoteTqdm(total=ticks, desc="ETL load (fails half-way)", unit="rows",
                   task_id=f"{prefix}:etl", position=3, **remote),
    ]


def _epoch(train: Any, prefix: str, remote: dict) -> None:
    with RemoteTqdm(total=50, desc=f"epoch {train.n + 1}", unit="batch", leave=False, position=4,
                    task_id=f"{prefix}:train:epoch-{train.n + 1}", **remote) as batches:
        for _ in range(50):
            batches.update(1)
    train.update(1)


def _etl_step(etl: Any, tick: int, ticks: int) -> Any:
    etl.update(1)
    if tick < ticks // 2:
        return etl
    etl.set_postfix_str("connection to warehouse lost")
    etl.remote_fail()
    return None
