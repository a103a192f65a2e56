"""Where the official API contracts live: `contracts/` in this repository (see its README).

Tests read them through `contract_path`, which fails loudly when a file is missing: a
contract test that silently skips would prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


def contract_path(*parts: str) -> Path:
    path = CONTRACTS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"The contract {path} is missing: it is part of the repository (contracts/); restore it.")
    return path
