"""Inference backends: one module per backend, a registry from ``type`` to backend."""
