"""The files cast ships with its code: the region map and the cloud-init templates.

They live at the top of the repository (`regions.yaml`, `templates/cloud-init/`); this package
holds symbolic links to them, so a wheel carries copies of both and an editable install reads
the originals. Read them only through `importlib.resources` (see `data_file`), never through a
path relative to the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

REGION_MAP = "regions.yaml"
CLOUD_INIT_TEMPLATES = "cloud-init"


def data_file(name: str) -> Traversable:
    """The shipped file or directory `name` (REGION_MAP, CLOUD_INIT_TEMPLATES)."""
    return files(__name__).joinpath(name)
