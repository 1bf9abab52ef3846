"""What this machine can run: RAM, GPU memory, onnxruntime providers.

Example:
    >>> hw = probe_hardware()
    >>> hw.ram_mb > 0
    True
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hardware:
    """Resources of this machine.

    Attributes:
        ram_mb: total memory in MiB.
        available_ram_mb: memory available now in MiB.
        gpu_mb: total memory of the largest NVIDIA GPU in MiB, ``None`` when there is none.
        providers: onnxruntime execution providers available here.
    """

    ram_mb: int
    available_ram_mb: int
    gpu_mb: int | None
    providers: tuple[str, ...]

    @property
    def cuda(self) -> bool:
        """Whether onnxruntime can use CUDA here."""
        return "CUDAExecutionProvider" in self.providers


def _meminfo() -> tuple[int, int]:
    total = avail = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                value = int(rest.split()[0]) // 1024 if rest.split() else 0
                if key == "MemTotal":
                    total = value
                elif key == "MemAvailable":
                    avail = value
    except (OSError, ValueError):
        pass
    if not total:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
        except (ValueError, OSError, AttributeError):
            total = 0
    return total, avail or total


def _gpu_mb() -> int | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        ).stdout
        values = [int(float(v)) for v in out.split() if v.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return max(values) if values else None


def _providers() -> tuple[str, ...]:
    try:
        import onnxruntime

        return tuple(onnxruntime.get_available_providers())
    except ImportError:
        return ()


@functools.lru_cache(maxsize=1)
def probe_hardware() -> Hardware:
    """Probe this machine once (cached): RAM, NVIDIA GPU memory, onnxruntime providers."""
    total, avail = _meminfo()
    return Hardware(total, avail, _gpu_mb(), _providers())
