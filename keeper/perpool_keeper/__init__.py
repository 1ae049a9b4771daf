"""perpool-keeper: the off-chain keeper daemon (oracle posting, borrow and funding accrual,
liquidations, pool AUM refresh)."""
