"""perpool-keeper: the off-chain keeper daemon (oracle posting, borrow accrual, auto-close).

Not implemented yet; only the package and its console script exist so far.
"""
