"""A Lookout-like process that starts a managed llama-server, prints its pid, then waits.

Run by ``test_llama_process.py``, which kills it with SIGKILL and checks that no
llama-server is left. Usage: ``python -m tests.backends.llama_child BINARY MODEL MMPROJ LOG``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from operators.backends.llama_server import LlamaServerBackend
from pipeline.core.config import LlamaServerBackendConfig
from tests.support.look_requests import look


def main(binary: str, model: str, mmproj: str, log_file: str) -> int:
    cfg = LlamaServerBackendConfig(
        binary=Path(binary),
        model=Path(model),
        mmproj=Path(mmproj),
        log_file=Path(log_file),
        startup_timeout_s=60,
        max_tokens=16,
    )
    backend = LlamaServerBackend("local", cfg)
    backend.start()
    # A look from a thread that then ends: the server must outlive it (and die with us).
    worker = threading.Thread(target=lambda: backend.judge(look()))
    worker.start()
    worker.join()
    print(f"PID {backend.pid}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
