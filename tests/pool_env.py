"""A Perpool exchange on a fresh localnet: program initialized, one pool, test mints with
custodies and oracles, helpers to fund traders and post prices.

Each test module that needs exchange state starts its own validator (``init`` runs once per
chain) and builds one ``PoolEnv``; tests change custody configs through the admin multisig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import advance_clock_confirmed

from perpool import pda
from perpool.client import PerpoolClient
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetRpc, airdrop

LAMPORTS_PER_SOL = 1_000_000_000
POOL = "main"


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    decimals: int
    stable: bool
    price: int
    """Initial price, as an integer with ``expo``."""
    expo: int


DEFAULT_TOKENS = (
    TokenSpec("SOL", 9, False, 100_00, -2),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
)


@dataclass
class PoolEnv:
    url: str
    client: PerpoolClient
    admin: Keypair
    specs: dict[str, TokenSpec]
    mints: dict[str, AsyncToken] = field(default_factory=dict)
    cosigners: list[Keypair] = field(default_factory=list)
    """The multisig's other signers (``admin`` is the first)."""
    min_signatures: int = 1
    last_publish: dict[str, int] = field(default_factory=dict)
    pool: str = POOL

    def mint(self, symbol: str) -> Pubkey:
        return self.mints[symbol].pubkey

    async def now(self) -> int:
        """The chain's Clock unix_timestamp (what the program compares prices against)."""
        async with LocalnetRpc(self.url) as rpc:
            return (await rpc.get_clock("confirmed")).unix_timestamp

    async def advance(self, seconds: int) -> None:
        """Moves the chain clock forward and waits until confirmed reads (``now``) see it."""
        async with LocalnetRpc(self.url) as rpc:
            await advance_clock_confirmed(rpc, seconds)

    async def set_price(
        self,
        symbol: str,
        price: int,
        *,
        expo: int | None = None,
        conf: int = 0,
        ema: int | None = None,
        publish_time: int | None = None,
    ) -> None:
        """Posts ``price`` (integer with the token's exponent) as the oracle authority (admin)."""
        spec = self.specs[symbol]
        when = publish_time if publish_time is not None else await self.now()
        if publish_time is None and when <= self.last_publish.get(symbol, 0):
            await self.advance(self.last_publish[symbol] - when + 1)
            when = await self.now()
        await self.client.set_price(
            self.pool,
            self.mint(symbol),
            self.admin,
            price=price,
            expo=spec.expo if expo is None else expo,
            conf=conf,
            ema=price if ema is None else ema,
            publish_time=when,
        )
        self.last_publish[symbol] = when

    async def refresh_prices(self) -> None:
        """Re-posts every custody's current price with a fresh publish time."""
        for symbol in self.specs:
            oracle = await self.client.fetch(
                "CustomOracle", self.client.custody_keys(self.pool, self.mint(symbol)).oracle
            )
            await self.set_price(
                symbol, oracle.price, expo=oracle.expo, conf=oracle.conf, ema=oracle.ema
            )

    async def new_wallet(self, sol: int = 10) -> Keypair:
        wallet = Keypair()
        await airdrop(self.client.connection, wallet.pubkey(), sol * LAMPORTS_PER_SOL)
        return wallet

    async def token_account(self, owner: Pubkey, symbol: str) -> Pubkey:
        """The owner's associated token account for a pool token (created if missing)."""
        token = self.mints[symbol]
        resp = await self.client.connection.get_token_accounts_by_owner(
            owner, _mint_opts(token.pubkey), Confirmed
        )
        if resp.value:
            return resp.value[0].pubkey
        return await token.create_associated_token_account(owner)

    async def fund(self, owner: Pubkey, symbol: str, amount: int) -> Pubkey:
        account = await self.token_account(owner, symbol)
        sig = (await self.mints[symbol].mint_to(account, self.admin, amount)).value
        await self.client.connection.confirm_transaction(sig, Confirmed, sleep_seconds=0.05)
        return account

    async def lp_account(self, owner: Pubkey) -> Pubkey:
        lp_mint = pda.lp_token_mint(pda.pool(self.pool))
        token = AsyncToken(self.client.connection, lp_mint, TOKEN_PROGRAM_ID, self.admin)
        resp = await self.client.connection.get_token_accounts_by_owner(
            owner, _mint_opts(lp_mint), Confirmed
        )
        if resp.value:
            return resp.value[0].pubkey
        return await token.create_associated_token_account(owner)

    async def balance(self, account: Pubkey) -> int:
        return int(
            (
                await self.client.connection.get_token_account_balance(account, Confirmed)
            ).value.amount
        )

    def config(self, symbol: str, **overrides: Any) -> dict[str, Any]:
        oracle = self.client.custody_keys(self.pool, self.mint(symbol)).oracle
        return custody_config(oracle, client_types=self.client.program.type, **overrides)

    async def configure(self, symbol: str, **overrides: Any) -> None:
        """Replaces a custody's config (defaults + ``overrides``) through the multisig."""
        await self.client.set_custody_config(
            self.pool,
            self.mint(symbol),
            self.config(symbol, **overrides),
            self.admin,
            self.approvers,
        )

    @property
    def approvers(self) -> list[Keypair]:
        """Signers whose recorded approvals, with the admin's, reach the threshold."""
        return self.cosigners[: self.min_signatures - 1]

    async def custody(self, symbol: str) -> Any:
        return await self.client.fetch(
            "Custody", self.client.custody_keys(self.pool, self.mint(symbol)).custody
        )


def _mint_opts(mint: Pubkey) -> Any:
    from solana.rpc.types import TokenAccountOpts

    return TokenAccountOpts(mint=mint)


async def build_pool_env(
    url: str,
    faucet: Keypair,
    tokens: tuple[TokenSpec, ...] = DEFAULT_TOKENS,
    configs: dict[str, dict[str, Any]] | None = None,
    *,
    signers: int = 1,
    min_signatures: int = 1,
) -> PoolEnv:
    """Initializes the program (admin = oracle authority; a ``min_signatures``-of-``signers``
    multisig whose first signer is the admin, 1-of-1 by default), creates the pool, a mint,
    custody and first price per token."""
    admin = Keypair()
    cosigners = [Keypair() for _ in range(signers - 1)]
    client = PerpoolClient.connect(url, admin)
    await airdrop(client.connection, admin.pubkey(), 1_000 * LAMPORTS_PER_SOL)
    for cosigner in cosigners:
        await airdrop(client.connection, cosigner.pubkey(), 10 * LAMPORTS_PER_SOL)
    env = PoolEnv(
        url=url,
        client=client,
        admin=admin,
        specs={t.symbol: t for t in tokens},
        cosigners=cosigners,
        min_signatures=min_signatures,
    )
    await client.init(
        [admin.pubkey(), *(c.pubkey() for c in cosigners)], min_signatures, admin.pubkey()
    )
    await client.add_pool(POOL, admin, env.approvers)
    for spec in tokens:
        env.mints[spec.symbol] = await AsyncToken.create_mint(
            client.connection, admin, admin.pubkey(), spec.decimals, TOKEN_PROGRAM_ID
        )
        overrides = (configs or {}).get(spec.symbol, {})
        await client.add_custody(
            POOL,
            env.mint(spec.symbol),
            spec.stable,
            env.config(spec.symbol, **overrides),
            admin,
            env.approvers,
        )
        await env.set_price(spec.symbol, spec.price)
    return env
