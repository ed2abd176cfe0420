"""Which job and executor a table run gets: in one process for a small table, forkserver processes for a
bigger one, and the chunked job for a table of more than GLAZE_CHUNK_ROWS entities.

A fresh Python process per step costs ~10 s on a small machine, more than a small table's whole work,
so up to GLAZE_IN_PROCESS_MAX_ROWS accepted rows the steps run in the run's own process. A big table's
steps get processes from a forkserver that imported the code location once (no import per step). The
crawler's child processes keep crash isolation where pages are parsed, either way. Past one chunk, the
chunked job keeps memory bounded and lands chunk by chunk, so a crash costs one chunk, not the table.
"""

from typing import Any

PRELOADED = ["glaze_pipeline.definitions"]


def forkserver_processes(max_concurrent: int = 4) -> dict[str, Any]:
    """The multiprocess executor's settings: steps forked from a server that imported the code location once."""
    return {"max_concurrent": max_concurrent, "start_method": {"forkserver": {"preload_modules": PRELOADED}}}


def forkserver_execution(max_concurrent: int = 4) -> dict[str, Any]:
    """For enrich_table, whose executor is chosen in its run config (in process or multiprocess)."""
    return {"config": {"multiprocess": forkserver_processes(max_concurrent)}}


def chunked_execution() -> dict[str, Any]:
    """For the chunked job, whose executor is the multiprocess one: its settings only."""
    return {"config": forkserver_processes()}


def execution_for(accepted_rows: int, in_process_max_rows: int) -> dict[str, Any]:
    """The `execution` section of an enrich_table run's config for a table of this size."""
    if accepted_rows <= in_process_max_rows:
        return {"config": {"in_process": {}}}
    return forkserver_execution()
