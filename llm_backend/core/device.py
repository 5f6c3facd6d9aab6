"""Which accelerator to run on, and with which dtype.

Chosen once per call site rather than at import so that ``ZSS_FORCE_CPU`` set by a test or an operator is honoured.
Half precision only on CUDA: on CPU fp16 matmuls are slow or unsupported, and MPS bf16 support varies by macOS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from llm_backend.core.config import get_settings


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3" or "CPU (2 threads)"
    dtype: torch.dtype
    memory_total_gb: float | None = None
    memory_used_gb: float | None = None

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.kind)


def pick_device() -> DeviceInfo:
    """CUDA (bf16 where supported, else fp16) > MPS (fp32) > CPU (fp32); ``ZSS_FORCE_CPU=1`` forces CPU."""
    if not get_settings().force_cpu:
        if torch.cuda.is_available():
            idx = torch.cuda.current_device()
            props = torch.cuda.get_device_properties(idx)
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return DeviceInfo(
                "cuda",
                props.name,
                dtype,
                memory_total_gb=props.total_memory / 1024**3,
                memory_used_gb=torch.cuda.memory_allocated(idx) / 1024**3,
            )
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return DeviceInfo("mps", "Apple MPS", torch.float32)
    return DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)", torch.float32)


def process_memory_mb() -> float:
    """Resident memory of this process, for the sidebar; 0 where /proc is missing (macOS falls back to resource)."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except Exception:  # pragma: no cover - exotic platforms
        return 0.0
