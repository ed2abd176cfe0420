"""The HTTP service: the single-record API (`/v1`), table uploads and exports, health, metrics and the console."""
