"""What runs only in a single process: a config that needs it is refused in cluster mode.

Example:
    >>> from pipeline.core.config_loader import load_config_text
    >>> cfg = load_config_text('[cameras.a]\\nurl = "a.mp4"\\n'
    ...     '[backends.local]\\ntype = "llama_server"\\nmodel = "m.gguf"\\n')
    >>> print(cluster_problems(cfg)[0])
    backends.local.type: the managed llama_server backend runs only in a single process (it \
starts llama-server next to Lookout); on a cluster run llama-server (or vLLM) as a service and \
use type = "openai" with its base_url
"""

from __future__ import annotations

from pipeline.core.config import LlamaServerBackendConfig, LookoutConfig
from pipeline.core.config_loader import ConfigProblem

SINGLE_PROCESS_ONLY = (
    'backends.NAME with type = "llama_server" (a managed llama-server)',
    "[web] enabled = true (the local web page)",
)
"""What the README lists as single-process only."""


def cluster_problems(cfg: LookoutConfig) -> list[ConfigProblem]:
    """One problem per key that cannot run on a cluster (empty: the config can)."""
    problems = [
        ConfigProblem(
            f"backends.{name}.type",
            "the managed llama_server backend runs only in a single process (it starts "
            "llama-server next to Lookout); on a cluster run llama-server (or vLLM) as a "
            'service and use type = "openai" with its base_url',
        )
        for name, backend in cfg.backends.items()
        if isinstance(backend, LlamaServerBackendConfig)
    ]
    if cfg.web.enabled:
        problems.append(
            ConfigProblem(
                "web.enabled",
                "the local web page runs only in a single process; set web.enabled = false "
                "to run on a cluster (the activity store itself is kept on the head)",
            )
        )
    return problems
