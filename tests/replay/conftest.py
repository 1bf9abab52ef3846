"""Fixtures of the replay tests: a yard clip with known visits (tests/support/yard.py)."""

from __future__ import annotations

import pytest

from tests.support.clips import Clip, make_clip
from tests.support.yard import yard_shapes


@pytest.fixture(scope="session")
def yard_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """20 s, 10 fps, 320x240 H.264: a shape on the lawn in 4..8 s and 13..16 s, in the sky 17..19 s."""
    path = tmp_path_factory.mktemp("replay") / "yard.mp4"
    return make_clip(path, seconds=20.0, fps=10, width=320, height=240, gop=10, shapes=yard_shapes)
