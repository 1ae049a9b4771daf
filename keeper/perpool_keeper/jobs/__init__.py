"""The keeper's jobs, one module each: oracle posting, borrow/funding accrual, liquidation and
pool AUM refresh."""
