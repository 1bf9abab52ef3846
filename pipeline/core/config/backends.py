"""``[backends.NAME]``: what judges a look (model servers, local models, rules)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.core.config.base import DAY_S, Model, check_http_url, read_secret
from pipeline.core.config.http_backend import HttpBackendConfig

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
"""Read for ``openai`` backends that name no other key source (as OpenAI's clients do)."""

Temperature = Annotated[float, Field(ge=0, le=2)]
"""A sampling temperature."""

Mean = Annotated[float, Field(ge=0, le=1)]
"""A normalization mean of one colour channel (pixels are scaled to 0..1 first)."""

Std = Annotated[float, Field(gt=0, le=1)]
"""A normalization std of one colour channel (pixels are scaled to 0..1 first)."""

MAX_RAM_MB = 1_048_576
"""The largest memory estimate a backend may state: 1 TiB."""

ReadTimeoutS = Annotated[
    float, Field(gt=0, le=3600, description="Longest wait for any single read, in seconds.")
]
"""A model server's read timeout (the same key of every such backend)."""

RequestTimeoutS = Annotated[float, Field(gt=0, le=3600)]
"""A model request's total deadline; each backend says what it covers."""

MaxTokens = Annotated[int, Field(ge=16, le=32768)]
"""The token limit of one answer."""


class OpenAIBackendConfig(Model):
    """An OpenAI-compatible chat endpoint (llama-server, vLLM, Ollama, LM Studio, cloud)."""

    type: Literal["openai"] = "openai"
    base_url: str = Field(description="Base URL ending in /v1, e.g. http://127.0.0.1:8080/v1.")
    model: str = Field(
        default="", description="Model id; empty means the first one /v1/models lists."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="API key; prefer LOOKOUT_BACKENDS__<NAME>__API_KEY or api_key_file.",
    )
    api_key_file: Path | None = Field(default=None, description="File holding the API key.")
    api_key_env: str | None = Field(
        default=None,
        description=(
            "Environment variable holding the API key; without any key source "
            f"(api_key, api_key_file, api_key_env, an Authorization header) {DEFAULT_API_KEY_ENV} "
            "is read."
        ),
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="Connect timeout in seconds."
    )
    read_timeout_s: ReadTimeoutS = 60.0
    request_timeout_s: RequestTimeoutS = Field(
        default=120.0,
        description=(
            "Seconds one request may take in all (connect, send, the whole answer); "
            "then the look fails and is retried like any failed look."
        ),
    )
    max_tokens: MaxTokens = Field(default=300, description="Token limit of each answer.")
    token_limit_field: Literal["auto", "max_tokens", "max_completion_tokens"] = Field(
        default="auto",
        description=(
            "Request field that carries max_tokens; auto sends max_tokens and switches to "
            "max_completion_tokens when the server asks for it (current OpenAI models)."
        ),
    )
    temperature: Temperature | Literal["default"] = Field(
        default=0.0,
        description=(
            'Sampling temperature; "default" leaves it out (the model\'s own default). '
            "Also left out, with a log line, when the server rejects it."
        ),
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extra fields merged into each request body (e.g. a response_format or grammar "
            "that steers the answer)."
        ),
    )
    response_format: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto",
        description=(
            "Structured output request; auto asks for a JSON schema and falls back only "
            "when the server rejects response_format itself."
        ),
    )
    max_concurrency: int = Field(
        default=1, ge=1, le=256, description="Requests in flight, shared by watches."
    )
    retries: int = Field(
        default=3, ge=0, le=10, description="Retries of one request on transient errors."
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, le=60, description="First retry delay, in seconds."
    )
    backoff_max_s: float = Field(
        default=20.0, gt=0, le=3600, description="Longest retry delay, in seconds."
    )
    circuit_failures: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open the circuit."
    )
    circuit_reset_s: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds before a half-open probe."
    )
    queue_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest wait of a look for a free request slot, in seconds.",
    )
    system_prompt: str | None = Field(
        default=None,
        description="System prompt template with {condition} and {focus}; default the baseline's.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_http_url(v)

    def resolved_api_key(self, *, fallback_env: str | None = DEFAULT_API_KEY_ENV) -> str | None:
        """Return the API key from the first key source that is set.

        The order: ``api_key`` (or its environment override
        ``LOOKOUT_BACKENDS__<NAME>__API_KEY``), ``api_key_file``, ``api_key_env``;
        when none of them is set and no ``Authorization`` header is configured,
        ``fallback_env`` (``OPENAI_API_KEY``, as OpenAI's own clients do).

        Example:
            >>> cfg = OpenAIBackendConfig(base_url="http://h/v1", api_key=SecretStr("sk-1"))
            >>> cfg.resolved_api_key()
            'sk-1'
        """
        if self.api_key is None and self.api_key_file is None and not self.api_key_env:
            has_auth = any(h.lower() == "authorization" for h in self.headers)
            if has_auth or not fallback_env:
                return None
            return os.environ.get(fallback_env) or None
        return read_secret(self.api_key, self.api_key_file, self.api_key_env)


class LlamaServerBackendConfig(Model):
    """A llama-server that Lookout starts on demand and stops when idle."""

    type: Literal["llama_server"] = "llama_server"
    binary: Path = Field(Path("llama-server"), description="llama-server executable.")
    model: Path = Field(description="GGUF model file.")
    mmproj: Path | None = Field(default=None, description="GGUF multimodal projector file.")
    host: str = Field(default="127.0.0.1", description="Address it listens on.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port; default a free one.")
    ctx_size: int = Field(default=4096, ge=256, le=1_048_576, description="Context size.")
    gpu_layers: int = Field(
        default=0, ge=0, le=999, description="Layers offloaded to the GPU (999: all)."
    )
    threads: int | None = Field(default=None, ge=1, le=1024, description="CPU threads.")
    extra_args: list[str] = Field(default_factory=list, description="More command-line arguments.")
    log_file: Path = Field(Path("llama-server.log"), description="Log, appended to.")
    startup_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds to wait for /health."
    )
    idle_unload_s: float = Field(
        default=300.0, gt=0, le=DAY_S, description="Stop after this many idle seconds."
    )
    image_width: int = Field(
        default=512, ge=32, le=4096, description="Frames are shrunk to this width."
    )
    image_height: int = Field(
        default=288, ge=32, le=4096, description="Frames are shrunk to this height."
    )
    jpeg_quality: int = Field(default=40, ge=1, le=100, description="JPEG quality of frames sent.")
    history_images: int = Field(
        default=1,
        ge=0,
        le=50,
        description="Earlier looks that keep their (shrunk) image; older ones go as text only.",
    )
    max_concurrency: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "Requests in flight, and the server's slots (--parallel) unless extra_args set them."
        ),
    )
    read_timeout_s: ReadTimeoutS = 120.0
    request_timeout_s: RequestTimeoutS = Field(
        default=300.0,
        description=(
            "Seconds one request may take in all (send, the whole answer); "
            "then the look fails and is retried like any failed look."
        ),
    )
    max_tokens: MaxTokens = Field(default=300, description="max_tokens of each request.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extra fields merged into each request body (e.g. a response_format or grammar "
            "that steers the answer)."
        ),
    )
    response_format: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto", description="Structured output request; auto asks for a JSON schema."
    )


class OnnxBackendConfig(Model):
    """A local ONNX classifier or detector whose named classes decide the condition."""

    type: Literal["onnx"] = "onnx"
    model: Path = Field(description="The .onnx file.")
    task: Literal["classify", "detect"] = Field(default="classify", description="Model kind.")
    match_classes: list[str] = Field(min_length=1, description="Class names that mean 'met'.")
    threshold: float = Field(default=0.5, ge=0, le=1, description="Score a class must pass.")
    labels: list[str] | None = Field(
        default=None, description="All class names; default from metadata."
    )
    input_size: int | None = Field(
        default=None, ge=8, le=4096, description="Square input size; default from model."
    )
    mean: tuple[Mean, Mean, Mean] = Field(
        default=(0.0, 0.0, 0.0),
        description="Normalization mean (pixels are scaled to 0..1, then (x - mean) / std).",
    )
    std: tuple[Std, Std, Std] = Field(default=(1.0, 1.0, 1.0), description="Normalization std.")
    providers: list[str] | None = Field(
        default=None, description="onnxruntime providers; default CUDA when present, then CPU."
    )
    next_run_in_s: float = Field(default=10.0, ge=1, le=300, description="Seconds between looks.")
    ram_mb: int = Field(
        default=2048, ge=1, le=MAX_RAM_MB, description="Approximate memory it needs (auto tier)."
    )


class ClipBackendConfig(Model):
    """Zero-shot classification with CLIP-style ONNX image and text encoders."""

    type: Literal["clip"] = "clip"
    image_encoder: Path = Field(description="ONNX image encoder.")
    text_encoder: Path = Field(description="ONNX text encoder.")
    tokenizer: Path = Field(
        description="CLIP BPE tokenizer: tokenizer.json, or a folder with vocab.json + merges.txt."
    )
    positive_prompts: list[str] | None = Field(default=None, description="Prompts meaning 'met'.")
    negative_prompts: list[str] | None = Field(
        default=None, description="Prompts meaning 'not met'."
    )
    margin: float = Field(
        default=0.05, ge=0, le=1, description="Similarity margin needed to decide."
    )
    input_size: int = Field(default=224, ge=8, le=4096, description="Image encoder input size.")
    mean: tuple[Mean, Mean, Mean] = Field(
        default=(0.48145466, 0.4578275, 0.40821073),
        description="Image normalization mean (CLIP's by default).",
    )
    std: tuple[Std, Std, Std] = Field(
        default=(0.26862954, 0.26130258, 0.27577711),
        description="Image normalization std (CLIP's by default).",
    )
    context_length: int = Field(default=77, ge=4, le=1024, description="Token sequence length.")
    next_run_in_s: float = Field(default=10.0, ge=1, le=300, description="Seconds between looks.")
    providers: list[str] | None = Field(default=None, description="onnxruntime providers.")
    ram_mb: int = Field(
        default=1024, ge=1, le=MAX_RAM_MB, description="Approximate memory it needs (auto tier)."
    )


class DetectionsBackendConfig(Model):
    """No model: met when matching detections persist over consecutive looks."""

    type: Literal["detections"] = "detections"
    consecutive_looks: int = Field(
        default=2, ge=1, le=100, description="Looks in a row that must see a match."
    )
    window_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="A detection counts for a look when at most this many seconds old.",
    )
    next_run_in_s: float = Field(default=5.0, ge=1, le=300, description="Seconds between looks.")
    message: str = Field(
        default="{label} seen on {camera}{zones_text}",
        description="Notification template: {label}, {camera}, {zones_text}, {count}, {condition}.",
    )


class NoneBackendConfig(Model):
    """No model at all: frames only, never met, zero cost."""

    type: Literal["none"] = "none"
    next_run_in_s: float = Field(default=30.0, ge=1, le=300, description="Seconds between looks.")


class AutoBackendConfig(Model):
    """Pick a backend: explicit choice, reachable server, local server, hardware, then none."""

    type: Literal["auto"] = "auto"
    use: str | None = Field(
        default=None, description="Name of a configured backend to use, if any."
    )
    probe_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="Seconds to probe each server."
    )


BackendConfig = Annotated[
    OpenAIBackendConfig
    | LlamaServerBackendConfig
    | OnnxBackendConfig
    | ClipBackendConfig
    | DetectionsBackendConfig
    | NoneBackendConfig
    | AutoBackendConfig
    | HttpBackendConfig,
    Field(discriminator="type"),
]
