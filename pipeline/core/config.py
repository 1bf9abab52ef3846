"""The ``pipeline.toml`` schema: one pydantic model per TOML table.

Every model forbids unknown keys. Values come from the TOML file and can be
overridden by environment variables named ``LOOKOUT_<TABLE>__<KEY>`` (nested
keys joined by ``__``, names in lower case), for example
``LOOKOUT_MQTT__HOST=broker.lan`` or ``LOOKOUT_BACKENDS__VLM__API_KEY=sk-...``.
Secrets never need to be in the TOML: each secret field has a ``*_file``
sibling (a path whose content is the secret) and can come from the
environment.

Load a file with :func:`pipeline.core.config_loader.load_config`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "LOOKOUT_"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$"
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
CAMERA_SCHEMES = (*NETWORK_SCHEMES, "file", "v4l2", "frigate")

Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64)]


class Model(BaseModel):
    """Base of every config table: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(value: SecretStr | None, file: Path | None, env: str | None = None) -> str | None:
    """Resolve a secret from its value, its file, or a named environment variable.

    Example:
        >>> read_secret(SecretStr("pw"), None)
        'pw'
    """
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    if env:
        return os.environ.get(env)
    return None


# ---------------------------------------------------------------- MQTT


class MqttTlsConfig(Model):
    """TLS for the MQTT connection. Fails closed: no fallback to plain text."""

    ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the broker's certificate."
    )
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client private key (mutual TLS).")
    insecure: bool = Field(default=False, description="Skip host name verification (testing only).")


class MqttConfig(Model):
    """``[mqtt]``: the one broker connection shared by sinks, detection sources and control."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version.")
    client_id: str | None = Field(
        default=None, description="Client id; default lookout-<host>-<pid>."
    )
    keepalive: int = Field(default=60, ge=5, le=3600, description="Keepalive in seconds.")
    username: str | None = Field(default=None, description="User name.")
    password: SecretStr | None = Field(
        default=None, description="Password; prefer LOOKOUT_MQTT__PASSWORD or password_file."
    )
    password_file: Path | None = Field(default=None, description="File holding the password.")
    topic_prefix: str = Field(default="lookout", min_length=1, description="Prefix of every topic.")
    tls: MqttTlsConfig | None = Field(
        default=None, description="TLS settings; absent means plain TCP."
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="QoS of alerts and state.")
    queue_size: int = Field(
        default=1000,
        ge=1,
        description="Messages waiting for the broker (QoS 1/2); overflow is dropped.",
    )
    reconnect_min_s: int = Field(
        default=1, ge=1, description="First wait before a reconnect, in seconds."
    )
    reconnect_max_s: int = Field(default=60, ge=1, description="Longest wait between reconnects.")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_has_no_wildcards(cls, v: str) -> str:
        if any(c in v for c in "#+") or v.endswith("/"):
            raise ValueError("must not contain '#' or '+' nor end with '/'")
        return v

    def resolved_password(self) -> str | None:
        """The password from the value or the file."""
        return read_secret(self.password, self.password_file)


# ---------------------------------------------------------------- cameras


class ZoneConfig(Model):
    """``[cameras.NAME.zones.ZONE]``: a polygon on the camera's picture."""

    points: list[tuple[float, float]] = Field(
        description="Polygon corners as [x, y] pairs, relative (0..1) or pixels."
    )
    units: Literal["auto", "relative", "pixels"] = Field(
        "auto", description="Coordinate units; auto means relative when every value is <= 1."
    )
    anchor: Literal["bottom_center", "center", "top_center", "box"] = Field(
        "bottom_center",
        description="Point of an object's box that must be inside (box: any overlap).",
    )
    inertia: int = Field(3, ge=1, description="Consecutive frames inside before an object counts.")
    loitering_time: float = Field(0.0, ge=0, description="Seconds inside before an object counts.")
    min_area: float = Field(
        0.0, ge=0, description="Minimum box area: a fraction of the frame (<1) or pixels (>=1)."
    )
    min_score: float = Field(0.0, ge=0, le=1, description="Minimum detection score.")

    @field_validator("points")
    @classmethod
    def _polygon(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(v) < 3:
            raise ValueError(f"a zone polygon needs at least 3 points, got {len(v)}")
        if any(x < 0 or y < 0 for x, y in v):
            raise ValueError("zone coordinates must not be negative")
        return v


class MotionDetectConfig(Model):
    """Motion by frame differencing on small grey frames; boxes labelled ``motion``."""

    type: Literal["motion"] = "motion"
    fps: float = Field(5.0, gt=0, le=30, description="Frames analysed per second.")
    threshold: int = Field(25, ge=1, le=255, description="Grey-level change that counts.")
    min_area: float = Field(
        0.002, gt=0, lt=1, description="Smallest moving region, as a fraction of the frame."
    )
    width: int = Field(160, ge=32, le=640, description="Width of the analysis frame in pixels.")
    label: str = Field("motion", description="Label given to motion boxes.")


class OnnxDetectConfig(Model):
    """A YOLO-format ONNX detector run through onnxruntime."""

    type: Literal["onnx"] = "onnx"
    model: Path = Field(description="Path of the .onnx file (YOLOv5/v8/11 layout).")
    fps: float = Field(2.0, gt=0, le=30, description="Frames analysed per second.")
    confidence: float = Field(0.4, ge=0, le=1, description="Minimum confidence.")
    iou: float = Field(0.45, ge=0, le=1, description="IoU threshold of non-maximum suppression.")
    classes: list[str] | None = Field(
        None, description="Class names; default from the model's metadata."
    )
    input_size: int | None = Field(
        None, ge=32, description="Square input size; default from model."
    )
    providers: list[str] | None = Field(None, description="onnxruntime providers, in order.")


class FrigateDetectConfig(Model):
    """Detections from Frigate's ``<prefix>/events`` MQTT topic (needs ``[mqtt]``)."""

    type: Literal["frigate"] = "frigate"
    topic_prefix: str = Field("frigate", description="Frigate's MQTT topic prefix.")
    camera: str | None = Field(None, description="Frigate's name for the camera; default the same.")
    include_false_positives: bool = Field(False, description="Keep events marked false positive.")
    detect_width: int | None = Field(
        None,
        gt=0,
        description="Width of Frigate's detect stream in pixels (Frigate's boxes refer to it); "
        "needed for relative zones here.",
    )
    detect_height: int | None = Field(
        None, gt=0, description="Height of Frigate's detect stream in pixels (with detect_width)."
    )

    @model_validator(mode="after")
    def _detect_size(self) -> FrigateDetectConfig:
        if (self.detect_width is None) != (self.detect_height is None):
            raise ValueError("set both detect_width and detect_height, or neither")
        return self


class MqttJsonDetectConfig(Model):
    """Detections as JSON on any MQTT topic (schema in the README; needs ``[mqtt]``)."""

    type: Literal["mqtt"] = "mqtt"
    topic: str = Field(description="Topic carrying detection JSON.")


DetectConfig = Annotated[
    MotionDetectConfig | OnnxDetectConfig | FrigateDetectConfig | MqttJsonDetectConfig,
    Field(discriminator="type"),
]


class CameraConfig(Model):
    """``[cameras.NAME]``: one video stream."""

    url: str = Field(
        description="rtsp://, rtsps://, rtmp://, http(s):// (MPEG-TS, HLS, MJPEG), "
        "a file path, /dev/videoN, or frigate://host:port/camera."
    )
    username: str | None = Field(None, description="User name, if not in the URL.")
    password: SecretStr | None = Field(
        None, description="Password; prefer LOOKOUT_CAMERAS__<NAME>__PASSWORD or password_file."
    )
    password_file: Path | None = Field(None, description="File holding the password.")
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra FFmpeg/PyAV options passed to av.open."
    )
    format: str | None = Field(
        None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_,]+$",
        description="FFmpeg input format such as mpjpeg, v4l2, hls or mpegts; probed when "
        "unset (v4l2 for /dev/videoN). options.format is still read when this is unset.",
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")
    decode: Literal["every_frame", "on_demand", "keyframes"] = Field(
        "on_demand", description="Decode strategy: what is decoded between looks."
    )
    realtime: bool = Field(True, description="Play files at their own pace, like a live camera.")
    loop: bool = Field(False, description="Start files again at their end.")
    open_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to open the stream.")
    read_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds a single read may take.")
    stall_timeout_s: float = Field(
        20.0, gt=0, description="Seconds without packets before reconnect."
    )
    reconnect_max_s: float = Field(60.0, ge=1, description="Longest wait between reconnects.")
    zones: dict[Name, ZoneConfig] = Field(default_factory=dict, description="Named zones.")
    detect: DetectConfig | None = Field(
        None, description="Where this camera's detections come from."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        if "://" not in v:
            if v.startswith("/dev/video") or not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", v):
                return v  # a path (file or V4L2 device)
            raise ValueError("is neither a path nor a URL with '://'")
        try:
            parts = urlsplit(v)
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({_safe_reason(exc)})") from None
        scheme = parts.scheme.lower()
        if scheme not in CAMERA_SCHEMES:
            raise ValueError(
                f"has unsupported scheme '{scheme}'; expected one of {', '.join(CAMERA_SCHEMES)}"
            )
        if scheme in NETWORK_SCHEMES and not parts.hostname:
            raise ValueError("has no host name")
        return v

    def resolved_url(self) -> str:
        """The URL with ``username``/``password`` inserted when they are given separately."""
        password = read_secret(self.password, self.password_file)
        if self.username is None and password is None:
            return self.url
        parts = urlsplit(self.url)
        if not parts.hostname:
            return self.url
        from urllib.parse import quote, urlunsplit

        user = quote(self.username or parts.username or "", safe="")
        cred = user + (f":{quote(password, safe='')}" if password is not None else "")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = f"{cred}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _safe_reason(exc: Exception) -> str:
    from pipeline.core.redact import redact

    return redact(str(exc))


# ---------------------------------------------------------------- backends


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
        default=None, description="Environment variable holding the API key."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Connect timeout in seconds.")
    read_timeout_s: float = Field(default=60.0, gt=0, description="Read timeout in seconds.")
    max_tokens: int = Field(default=300, ge=16, description="max_tokens of each request.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra fields merged into each request body."
    )
    response_format: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto", description="Structured output request; auto asks for a JSON schema."
    )
    max_concurrency: int = Field(
        default=1, ge=1, le=256, description="Requests in flight, shared by watches."
    )
    retries: int = Field(
        default=3, ge=0, le=10, description="Retries of one request on transient errors."
    )
    backoff_initial_s: float = Field(default=0.5, gt=0, description="First retry delay.")
    backoff_max_s: float = Field(default=20.0, gt=0, description="Longest retry delay.")
    circuit_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open the circuit."
    )
    circuit_reset_s: float = Field(
        default=30.0, gt=0, description="Seconds before a half-open probe."
    )
    queue_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest wait of a look for a free request slot."
    )
    system_prompt: str | None = Field(
        default=None,
        description="System prompt template with {condition} and {focus}; default the baseline's.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _check_http_url(v)

    def resolved_api_key(self) -> str | None:
        """Return the API key from the value, the file or the named environment variable."""
        return read_secret(self.api_key, self.api_key_file, self.api_key_env)


def _check_http_url(v: str) -> str:
    try:
        parts = urlsplit(v)
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({_safe_reason(exc)})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return v.rstrip("/")


class LlamaServerBackendConfig(Model):
    """A llama-server that Lookout starts on demand and stops when idle."""

    type: Literal["llama_server"] = "llama_server"
    binary: Path = Field(Path("llama-server"), description="llama-server executable.")
    model: Path = Field(description="GGUF model file.")
    mmproj: Path | None = Field(default=None, description="GGUF multimodal projector file.")
    host: str = Field(default="127.0.0.1", description="Address it listens on.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Port; default a free one.")
    ctx_size: int = Field(default=4096, ge=256, description="Context size.")
    gpu_layers: int = Field(default=0, ge=0, description="Layers offloaded to the GPU.")
    threads: int | None = Field(default=None, ge=1, description="CPU threads.")
    extra_args: list[str] = Field(default_factory=list, description="More command-line arguments.")
    log_file: Path = Field(Path("llama-server.log"), description="Log, appended to.")
    startup_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds to wait for /health."
    )
    idle_unload_s: float = Field(
        default=300.0, gt=0, description="Stop after this many idle seconds."
    )
    image_width: int = Field(default=512, ge=32, description="Frames are shrunk to this width.")
    image_height: int = Field(default=288, ge=32, description="Frames are shrunk to this height.")
    jpeg_quality: int = Field(default=40, ge=1, le=100, description="JPEG quality of frames sent.")
    history_images: int = Field(
        default=1,
        ge=0,
        description="Earlier looks that keep their (shrunk) image; older ones go as text only.",
    )
    max_concurrency: int = Field(default=1, ge=1, description="Requests in flight.")
    read_timeout_s: float = Field(default=120.0, gt=0, description="Read timeout in seconds.")


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
        default=None, ge=8, description="Square input size; default from model."
    )
    mean: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 0.0),
        description="Normalization mean (pixels are scaled to 0..1, then (x - mean) / std).",
    )
    std: tuple[float, float, float] = Field(
        default=(1.0, 1.0, 1.0), description="Normalization std."
    )
    providers: list[str] | None = Field(
        default=None, description="onnxruntime providers; default CUDA when present, then CPU."
    )
    next_run_in_s: float = Field(default=10.0, ge=1, le=300, description="Seconds between looks.")
    ram_mb: int = Field(default=2048, ge=1, description="Approximate memory it needs (auto tier).")


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
    input_size: int = Field(default=224, ge=8, description="Image encoder input size.")
    mean: tuple[float, float, float] = Field(
        default=(0.48145466, 0.4578275, 0.40821073),
        description="Image normalization mean (CLIP's by default).",
    )
    std: tuple[float, float, float] = Field(
        default=(0.26862954, 0.26130258, 0.27577711),
        description="Image normalization std (CLIP's by default).",
    )
    context_length: int = Field(default=77, ge=4, description="Token sequence length.")
    next_run_in_s: float = Field(default=10.0, ge=1, le=300, description="Seconds between looks.")
    providers: list[str] | None = Field(default=None, description="onnxruntime providers.")
    ram_mb: int = Field(default=1024, ge=1, description="Approximate memory it needs (auto tier).")


class DetectionsBackendConfig(Model):
    """No model: met when matching detections persist over consecutive looks."""

    type: Literal["detections"] = "detections"
    consecutive_looks: int = Field(
        default=2, ge=1, description="Looks in a row that must see a match."
    )
    window_s: float = Field(
        default=2.0, gt=0, description="A detection counts for a look when at most this old."
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
    probe_timeout_s: float = Field(default=2.0, gt=0, description="Seconds to probe each server.")


BackendConfig = Annotated[
    OpenAIBackendConfig
    | LlamaServerBackendConfig
    | OnnxBackendConfig
    | ClipBackendConfig
    | DetectionsBackendConfig
    | NoneBackendConfig
    | AutoBackendConfig,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- sinks


class ConsoleSinkConfig(Model):
    """Print alerts (and watch state) on standard output."""

    type: Literal["console"] = "console"
    format: Literal["text", "json"] = Field(default="text", description="Line format.")
    states: bool = Field(default=True, description="Print watch state changes too.")


class MqttSinkConfig(Model):
    """Publish to the ``[mqtt]`` broker: alerts, retained state, snapshots, discovery."""

    type: Literal["mqtt"] = "mqtt"
    snapshots: bool = Field(default=False, description="Publish the judged frame as JPEG.")
    frigate_compat: bool = Field(
        default=False, description="Also publish <frigate_prefix>/camera_monitoring."
    )
    frigate_prefix: str = Field(
        default="frigate", description="Topic prefix for the Frigate payload."
    )
    home_assistant: bool = Field(
        default=False, description="Publish Home Assistant MQTT discovery."
    )
    discovery_prefix: str = Field(
        default="homeassistant", description="Home Assistant discovery prefix."
    )


class WebhookSinkConfig(Model):
    """POST signed JSON (Standard Webhooks) through a durable outbox."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="Endpoint URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers.")
    secret: SecretStr | None = Field(
        default=None,
        description="whsec_ secret; prefer LOOKOUT_SINKS__<NAME>__SECRET or secret_file.",
    )
    secret_file: Path | None = Field(
        default=None, description="File holding the secret(s), one a line."
    )
    attach_image: Literal["none", "base64", "multipart"] = Field(
        default="none", description="JPEG."
    )
    states: bool = Field(default=False, description="Send watch state changes too.")
    outbox: Path = Field(default=Path("lookout-outbox.sqlite3"), description="SQLite outbox file.")
    max_age_s: float = Field(
        default=86400.0, gt=0, description="Give up (dead letter) after this age."
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Connect timeout.")
    read_timeout_s: float = Field(default=15.0, gt=0, description="Read timeout.")
    backoff_initial_s: float = Field(default=1.0, gt=0, description="First retry delay.")
    backoff_max_s: float = Field(default=600.0, gt=0, description="Longest retry delay.")
    keep_delivered_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="Delete delivered events from the outbox this many seconds after delivery.",
    )
    keep_dead_s: float = Field(
        default=30 * 86400.0,
        ge=0,
        description="Delete dead letters from the outbox this many seconds after giving up.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _check_http_url(v)


class JsonlSinkConfig(Model):
    """Append alerts and states as JSON lines, rotated by size."""

    type: Literal["jsonl"] = "jsonl"
    path: Path = Field(description="File to append to.")
    max_bytes: int = Field(default=10_000_000, ge=1024, description="Rotate past this size.")
    backups: int = Field(default=5, ge=0, description="Rotated files kept.")
    states: bool = Field(default=True, description="Write watch states too.")


class SnapshotSinkConfig(Model):
    """Save each alert's judged frame as JPEG under a folder."""

    type: Literal["snapshot"] = "snapshot"
    directory: Path = Field(description="Folder for the JPEG files.")
    keep: int = Field(default=200, ge=1, description="Newest files kept.")


SinkConfig = Annotated[
    ConsoleSinkConfig | MqttSinkConfig | WebhookSinkConfig | JsonlSinkConfig | SnapshotSinkConfig,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- watches


class WatchConfig(Model):
    """``[[watches]]``: one camera, one condition in plain language."""

    name: Name = Field(description="Unique watch name (letters, digits, _ and -).")
    camera: str = Field(description="Camera name from [cameras].")
    condition: str = Field(min_length=3, description="What to watch for, in plain language.")
    labels: list[str] = Field(default_factory=list, description="Object labels that wake it.")
    zones: list[str] = Field(default_factory=list, description="Camera zones that matter.")
    backend: str = Field("auto", description="Backend name from [backends], or auto.")
    sinks: list[str] | None = Field(None, description="Sink names; default every sink.")
    max_duration_minutes: float = Field(
        60.0, ge=0, description="End as failed after this long; 0 runs forever."
    )
    mode: Literal["once", "repeat"] = Field(
        "once", description="End at the first alert, or re-arm."
    )
    quiet_period_s: float = Field(
        300.0, ge=0, description="repeat: seconds of quiet after an alert."
    )
    agree_looks: int = Field(1, ge=1, description="repeat: looks that must say met...")
    agree_window: int = Field(1, ge=1, description="...among this many latest looks.")
    max_looks_per_hour: int | None = Field(None, ge=1, description="Look budget per hour.")
    cooldown_s: float = Field(10.0, ge=0, description="Cooldown of wakes without zones.")
    history_turns: int = Field(10, ge=0, le=50, description="User/assistant pairs kept.")
    history_images: int | None = Field(
        None, ge=0, description="Keep images only in this many latest turns (older as text)."
    )
    image_max_height: int = Field(480, ge=64, le=2160, description="Frames shrunk to this height.")
    jpeg_quality: int = Field(85, ge=1, le=100, description="JPEG quality of frames sent.")
    persistent: bool = Field(False, description="Run-time watches: survive a restart.")

    @field_validator("condition")
    @classmethod
    def _condition(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @model_validator(mode="after")
    def _agreement(self) -> WatchConfig:
        if self.agree_looks > self.agree_window:
            raise ValueError("agree_looks must not exceed agree_window")
        return self


# ---------------------------------------------------------------- the rest


class MetricsConfig(Model):
    """``[metrics]``: Prometheus metrics and /healthz over HTTP."""

    enabled: bool = Field(False, description="Serve metrics.")
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(9108, ge=0, le=65535, description="Port (0 picks a free one).")
    camera_offline_s: float = Field(
        60.0, gt=0, description="/healthz fails past this offline time."
    )
    sink_failing_s: float = Field(
        60.0, gt=0, description="/healthz fails when a sink or MQTT has failed this long."
    )


class LogConfig(Model):
    """``[log]``: logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    json_lines: bool = Field(False, description="One JSON object per log line.")


class ReloadConfig(Model):
    """``[reload]``: reloading pipeline.toml without a restart (SIGHUP always reloads)."""

    watch_file: bool = Field(True, description="Reload when pipeline.toml changes on disk.")
    poll_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often the file is checked for changes, in seconds."
    )


class ControlConfig(Model):
    """``[control]``: start, cancel and list watches at run time over MQTT (needs ``[mqtt]``)."""

    enabled: bool = Field(True, description="Listen on <prefix>/watches/set, .../cancel, .../list.")
    reply_topic: str = Field(
        "watches/reply",
        min_length=1,
        description="Reply topic under the prefix when a request names none (MQTT 3.1.1).",
    )
    state_file: Path = Field(
        Path("lookout-watches.json"),
        description="Persistent run-time watches; relative paths are next to the config file.",
    )
    max_watches: int = Field(100, ge=0, description="Most run-time watches at once.")
    webhook_outbox: Path = Field(
        Path("lookout-runtime-outbox.sqlite3"),
        description=(
            "SQLite outbox of the webhooks that run-time watches bring (a `webhook` key in "
            "the watches/set body); relative paths are next to the config file."
        ),
    )
    allow_webhook_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Networks (CIDR, e.g. 192.168.1.0/24) a run-time watch's webhook URL may resolve "
            "to although they are private, loopback or link-local; by default only public "
            "addresses are allowed."
        ),
    )

    @field_validator("allow_webhook_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"'{net}' is not a network in CIDR form (e.g. 10.0.0.0/8)"
                ) from None
        return v

    @field_validator("reply_topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if any(c in v for c in "#+") or v.startswith("/") or v.endswith("/"):
            raise ValueError("must not contain '#' or '+' nor start or end with '/'")
        return v


class ShutdownConfig(Model):
    """``[shutdown]``: what SIGINT/SIGTERM waits for."""

    grace_s: float = Field(
        10.0, ge=0, le=600, description="Seconds looks in flight may take to finish."
    )
    flush_s: float = Field(
        5.0, ge=0, le=600, description="Seconds sinks may take to flush queued messages."
    )


def _default_sinks() -> dict[str, SinkConfig]:
    return {"console": ConsoleSinkConfig()}


class LookoutConfig(BaseSettings):
    """The whole ``pipeline.toml``.

    Environment variables (prefix ``LOOKOUT_``, nested keys joined by ``__``)
    override values from the file.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    mqtt: MqttConfig | None = Field(None, description="MQTT broker; absent means no MQTT.")
    cameras: dict[Name, CameraConfig] = Field(description="Cameras by name.")
    backends: dict[Name, BackendConfig] = Field(default_factory=dict, description="Backends.")
    sinks: dict[Name, SinkConfig] = Field(default_factory=_default_sinks, description="Sinks.")
    watches: list[WatchConfig] = Field(default_factory=list, description="Watches.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Metrics.")
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    reload: ReloadConfig = Field(default_factory=ReloadConfig, description="Reloading.")
    control: ControlConfig = Field(
        default_factory=ControlConfig, description="Run-time watches over MQTT."
    )
    shutdown: ShutdownConfig = Field(default_factory=ShutdownConfig, description="Shutdown.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the TOML document (passed as init values)."""
        return (env_settings, init_settings)
