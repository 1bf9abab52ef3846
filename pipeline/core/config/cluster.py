"""``[cluster]``: run the same ``pipeline.toml`` on a Ray cluster (``run --ray``).

Example:
    >>> ClusterConfig().address, ClusterConfig().enabled
    ('auto', False)
    >>> ClusterConfig(address="10.0.0.5:6379").address
    '10.0.0.5:6379'
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline.core.config.base import Model

ADDRESS_WORDS = ("auto", "local")
"""The addresses that are not a host: ``auto`` (join or start) and ``local`` (start one)."""


class ClusterConfig(Model):
    """``[cluster]``: cameras hosted by Ray actors on many machines; sinks and state on the head."""

    enabled: bool = Field(
        False,
        description=(
            "Run on a Ray cluster (as `run --ray` does); needs Ray "
            "(`pip install 'lookout[distributed]'`)."
        ),
    )
    address: str = Field(
        "auto",
        min_length=1,
        max_length=500,
        description=(
            "The Ray cluster: `auto` joins the one `ray start` made on this machine, else "
            "starts one here; `local` always starts one here; `HOST:PORT` joins a running "
            "head (`ray start --head`, KubeRay's head service)."
        ),
    )
    cameras_per_actor: int | None = Field(
        None,
        ge=1,
        le=1000,
        description=(
            "Cameras one actor (one process) hosts (1-1000); default: as many actors on a "
            "node as it has CPUs, the node's cameras shared evenly (an actor process costs "
            "tens of MB before its first camera)."
        ),
    )
    cameras_per_cpu: float = Field(
        8.0,
        gt=0,
        le=1000,
        description=(
            "A node's capacity, in cameras per CPU it gives Ray (up to 1000), unless the "
            "node declares a `lookout_cameras` resource (`ray start --resources="
            "'{\"lookout_cameras\": 40}'`); a node with no CPUs hosts none."
        ),
    )
    head_cameras: bool = Field(
        True,
        description="Whether the node that runs Lookout itself (the head) hosts cameras too.",
    )
    hub_hosts_cameras: bool = Field(
        True,
        description=(
            "Whether the hub's process on the head also hosts the head's first camera group "
            "(one Ray worker process fewer: about 0.005 of a core and 140 MB; a crash in "
            "that group restarts the hub, and the group moves as any lost group does)."
        ),
    )
    health_interval_s: float = Field(
        1.0,
        ge=0.1,
        le=60,
        description=(
            "How often the camera actors' answers are looked at (s); each actor answers "
            "within a third of `lost_after_s`, at most 5 s."
        ),
    )
    lost_after_s: float = Field(
        10.0,
        ge=1,
        le=600,
        description=(
            "An actor that has not answered for this long is taken for lost and its "
            "cameras move (1-600 s; a node Ray reports dead is acted on at once)."
        ),
    )
    flush_interval_s: float = Field(
        1.0,
        ge=0.01,
        le=10,
        description=(
            "How often each actor sends its watch and camera states and looks on to the "
            "sinks, in seconds (0.01-10); alerts and a watch's end go at once."
        ),
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        v = v.strip()
        if v in ADDRESS_WORDS or v.startswith("ray://"):
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be auto, local, HOST:PORT or ray://HOST:PORT")
        return v
