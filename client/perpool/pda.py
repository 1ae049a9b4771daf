"""Program-derived addresses of the Perpool program (seeds as in ``state/*.rs``)."""

from __future__ import annotations

from solders.pubkey import Pubkey

from perpool.program import PROGRAM_ID

BPF_LOADER_UPGRADEABLE = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")


def _pda(*seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), PROGRAM_ID)[0]


def perpool() -> Pubkey:
    return _pda(b"perpool")


def multisig() -> Pubkey:
    return _pda(b"multisig")


def transfer_authority() -> Pubkey:
    return _pda(b"transfer_authority")


def pool(name: str) -> Pubkey:
    return _pda(b"pool", name.encode())


def lp_token_mint(pool_key: Pubkey) -> Pubkey:
    return _pda(b"lp_token_mint", bytes(pool_key))


def custody(pool_key: Pubkey, mint: Pubkey) -> Pubkey:
    return _pda(b"custody", bytes(pool_key), bytes(mint))


def custody_token_account(pool_key: Pubkey, mint: Pubkey) -> Pubkey:
    return _pda(b"custody_token_account", bytes(pool_key), bytes(mint))


def custom_oracle(pool_key: Pubkey, mint: Pubkey) -> Pubkey:
    return _pda(b"oracle", bytes(pool_key), bytes(mint))


def position(owner: Pubkey, pool_key: Pubkey, custody_key: Pubkey, side: str) -> Pubkey:
    """``side`` is ``"long"`` or ``"short"``."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    return _pda(b"position", bytes(owner), bytes(pool_key), bytes(custody_key), side.encode())


def program_data() -> Pubkey:
    """The program's ProgramData account under the upgradeable loader."""
    return Pubkey.find_program_address([bytes(PROGRAM_ID)], BPF_LOADER_UPGRADEABLE)[0]
