"""The ``pipeline.toml`` schema: one pydantic model per TOML table.

Every model forbids unknown keys. Values come from the TOML file and can be
overridden by environment variables named ``LOOKOUT_<TABLE>__<KEY>`` (nested
keys joined by ``__``, names in lower case), for example
``LOOKOUT_MQTT__HOST=broker.lan`` or ``LOOKOUT_BACKENDS__VLM__API_KEY=sk-...``.
Secrets never need to be in the TOML: each secret field has a ``*_file``
sibling (a path whose content is the secret) and can come from the
environment.

The tables live in submodules by idea (``base``, ``mqtt``, ``cameras``,
``backends``, ``sinks``, ``watches``, ``service``); every name is importable
from here. Load a file with :func:`pipeline.core.config_loader.load_config`.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.core.config.activity import ActivityConfig, CaptionsConfig, WebConfig
from pipeline.core.config.backends import (
    AutoBackendConfig,
    BackendConfig,
    ClipBackendConfig,
    DetectionsBackendConfig,
    LlamaServerBackendConfig,
    NoneBackendConfig,
    OnnxBackendConfig,
    OpenAIBackendConfig,
)
from pipeline.core.config.base import (
    CAMERA_SCHEMES,
    ENV_PREFIX,
    NAME_PATTERN,
    NETWORK_SCHEMES,
    Model,
    Name,
    read_secret,
)
from pipeline.core.config.cameras import (
    CameraConfig,
    DetectConfig,
    FrigateDetectConfig,
    MotionDetectConfig,
    MqttJsonDetectConfig,
    OnnxDetectConfig,
    ZoneConfig,
)
from pipeline.core.config.cluster import ClusterConfig
from pipeline.core.config.frigate import FrigateConfig
from pipeline.core.config.http_backend import HttpBackendConfig
from pipeline.core.config.mqtt import MqttConfig, MqttTlsConfig
from pipeline.core.config.service import (
    ControlConfig,
    LogConfig,
    MetricsConfig,
    ReloadConfig,
    ShutdownConfig,
)
from pipeline.core.config.sinks import (
    ConsoleSinkConfig,
    JsonlSinkConfig,
    MqttSinkConfig,
    NotifySinkConfig,
    OutboxSinkConfig,
    SinkConfig,
    SnapshotSinkConfig,
    WebhookSinkConfig,
)
from pipeline.core.config.watches import WatchConfig

__all__ = [
    "CAMERA_SCHEMES",
    "ENV_PREFIX",
    "NAME_PATTERN",
    "NETWORK_SCHEMES",
    "ActivityConfig",
    "AutoBackendConfig",
    "BackendConfig",
    "CameraConfig",
    "CaptionsConfig",
    "ClipBackendConfig",
    "ClusterConfig",
    "ConsoleSinkConfig",
    "ControlConfig",
    "DetectConfig",
    "DetectionsBackendConfig",
    "FrigateConfig",
    "FrigateDetectConfig",
    "HttpBackendConfig",
    "JsonlSinkConfig",
    "LlamaServerBackendConfig",
    "LogConfig",
    "LookoutConfig",
    "MetricsConfig",
    "Model",
    "MotionDetectConfig",
    "MqttConfig",
    "MqttJsonDetectConfig",
    "MqttSinkConfig",
    "MqttTlsConfig",
    "Name",
    "NoneBackendConfig",
    "NotifySinkConfig",
    "OnnxBackendConfig",
    "OnnxDetectConfig",
    "OpenAIBackendConfig",
    "OutboxSinkConfig",
    "ReloadConfig",
    "ShutdownConfig",
    "SinkConfig",
    "SnapshotSinkConfig",
    "WatchConfig",
    "WebConfig",
    "WebhookSinkConfig",
    "ZoneConfig",
    "read_secret",
]


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
    cameras: dict[Name, CameraConfig] = Field(
        default_factory=dict,
        description="Cameras by name (required unless [frigate] brings them).",
    )
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
    frigate: FrigateConfig | None = Field(
        None, description="Cameras, zones and detections from a Frigate NVR."
    )
    activity: ActivityConfig = Field(
        default_factory=ActivityConfig, description="The activity store."
    )
    web: WebConfig = Field(default_factory=WebConfig, description="The local web page.")
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Running on a Ray cluster."
    )

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
