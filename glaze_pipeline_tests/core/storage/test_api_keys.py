"""API keys: shown once, stored as a digest, listed without secrets, revoked for good; the `glaze keys` commands."""

from __future__ import annotations

import re

from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.core.storage.api_keys import authenticate, create_key, digest, revoke_key


def test_a_key_is_stored_only_as_its_digest_and_revocation_is_final(conn):
    key, token = create_key(conn, "app", rate_per_min=120, burst=5, daily_cap_usd=2.5)
    conn.commit()
    stored = conn.execute("SELECT key_hash FROM glaze.api_keys WHERE key_id = %s", (key.key_id,)).fetchone()[0]
    assert stored == digest(token) and token not in stored
    assert re.fullmatch(rf"glz_{key.key_id}_[A-Za-z0-9_-]{{43}}", token)
    found = authenticate(conn, token)
    assert found is not None and (found.rate_per_min, found.burst, found.daily_cap_usd) == (120, 5, 2.5)
    assert authenticate(conn, token + "x") is None
    assert authenticate(conn, token.replace(key.key_id, "0" * 12)) is None
    assert authenticate(conn, None) is None and authenticate(conn, "") is None
    revoke_key(conn, key.key_id)
    conn.commit()
    assert authenticate(conn, token) is None


def test_glaze_keys_create_list_revoke(servers):
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "crm sync", "--rate-per-min", "30", "--daily-cap", "1.5"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    listed = runner.invoke(main, ["keys", "list"])
    assert key_id in listed.output and "crm sync" in listed.output and "$1.5" in listed.output
    assert token.split("_", 2)[2] not in listed.output  # the secret is never shown again
    revoked = runner.invoke(main, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    unknown = runner.invoke(main, ["keys", "revoke", "ffffffffffff"])
    assert unknown.exit_code == 2 and "glaze keys list" in unknown.output and "Traceback" not in unknown.output
