"""The code location: every definition under `glaze_pipeline/defs/`, loaded by Dagster's defs-folder loader.

Each domain folder there holds its assets, checks, sensors and jobs; nothing here reads the environment.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)


defs = build_definitions()
