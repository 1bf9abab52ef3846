"""Fixtures of the real llama-server tests (see tests/support/llama.py)."""

from tests.support.llama import (  # noqa: F401 - pytest finds fixtures by name
    llama_server_binary,
    llama_server_factory,
    real_llama_server,
)
