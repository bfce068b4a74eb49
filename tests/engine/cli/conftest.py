"""Fixtures of the command-line tests."""
from __future__ import annotations

import pytest

from cli_photo import write_photo, write_shifts


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """The synthetic photo (cli_photo) and a transforms.json of two frames: identity, then 0.25 m to +X."""
    d = tmp_path_factory.mktemp("photo")
    write_photo(d)
    write_shifts(d / "transforms.json", [0.0, 0.25])
    return d
