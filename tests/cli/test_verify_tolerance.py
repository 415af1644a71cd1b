"""``codat-webhooks verify --tolerance``: a window that cannot work is a usage error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import AUTHORIZATION, SECRET, Cli

from codat_webhooks.testing import sample_body, sign

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-inf", "-1"])
def test_verify_refuses_a_tolerance_that_is_not_a_finite_window(
    cli: Cli, tmp_path: Path, tolerance: str
) -> None:
    body = sample_body("Sync Completed")
    # A ten-year-old capture: with tolerance=nan it used to say "authenticated".
    headers = sign(body, SECRET, timestamp=1_450_000_000)
    (tmp_path / "headers.txt").write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
    (tmp_path / "body.json").write_bytes(body)
    files = (str(tmp_path / "headers.txt"), str(tmp_path / "body.json"))
    for credential in (("--signing-secret", SECRET), ("--authorization", AUTHORIZATION)):
        result = cli("verify", *files, *credential, f"--tolerance={tolerance}")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "tolerance must be a finite number >= 0 seconds" in result.stderr
        assert "authenticated" not in result.stdout
