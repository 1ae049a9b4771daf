use anchor_lang::prelude::*;

#[error_code]
pub enum PerpoolError {
    #[msg("Arithmetic overflow")]
    MathOverflow,
    #[msg("Division by zero")]
    DivisionByZero,
    #[msg("Invalid multisig configuration")]
    InvalidMultisigConfig,
    #[msg("Signer is not a member of the admin multisig")]
    NotAMultisigSigner,
    #[msg("This signer already approved the pending instruction")]
    AlreadySigned,
    #[msg("Not enough multisig approvals for this exact instruction")]
    NotEnoughApprovals,
    #[msg("Only the program's upgrade authority can initialize it")]
    NotUpgradeAuthority,
    #[msg("Invalid pool name")]
    InvalidPoolName,
    #[msg("The pool already has the maximum number of custodies")]
    TooManyCustodies,
    #[msg("The program already has the maximum number of pools")]
    TooManyPools,
    #[msg("Invalid pricing configuration")]
    InvalidPricingConfig,
    #[msg("Invalid fee configuration")]
    InvalidFeeConfig,
    #[msg("Invalid borrow rate configuration")]
    InvalidBorrowRateConfig,
    #[msg("Invalid token ratios")]
    InvalidTokenRatios,
    #[msg("Invalid oracle configuration")]
    InvalidOracleConfig,
    #[msg("Oracle account does not match the custody's configuration")]
    InvalidOracleAccount,
    #[msg("Oracle price is zero or negative")]
    InvalidOraclePrice,
    #[msg("Oracle price is stale")]
    StaleOraclePrice,
    #[msg("Oracle confidence interval is too wide")]
    OracleConfidenceTooWide,
    #[msg("Oracle publish time must increase and may not be in the future")]
    InvalidPublishTime,
    #[msg("Signer is not the oracle authority")]
    NotOracleAuthority,
    #[msg("Pyth price update is not fully verified")]
    UnverifiedPythPrice,
    #[msg("Pyth feed id does not match the custody's feed")]
    WrongPythFeed,
    #[msg("Custody does not belong to this pool")]
    CustodyNotInPool,
    #[msg("Remaining accounts must be every custody of the pool and then their oracles, in pool order")]
    InvalidRemainingAccounts,
    #[msg("Token account does not match the custody")]
    InvalidTokenAccount,
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("Output is below the requested minimum")]
    SlippageExceeded,
    #[msg("Execution price is worse than the price limit")]
    PriceLimitExceeded,
    #[msg("This action is paused")]
    ActionPaused,
    #[msg("Leverage is below the minimum initial leverage")]
    LeverageTooLow,
    #[msg("Leverage is above the maximum")]
    LeverageTooHigh,
    #[msg("Collateral does not cover the fees")]
    InsufficientCollateral,
    #[msg("Not enough unlocked tokens in the custody")]
    InsufficientLiquidity,
    #[msg("Custody utilization would exceed its maximum")]
    MaxUtilizationExceeded,
    #[msg("Position size is above the custody's maximum")]
    PositionTooLarge,
    #[msg("Open interest would exceed the custody's cap")]
    OpenInterestCapExceeded,
    #[msg("Custody ratio would leave its allowed band")]
    TokenRatioOutOfBounds,
    #[msg("Longs need collateral in the traded token")]
    InvalidLongCollateral,
    #[msg("Shorts need collateral in a stable custody and a non-stable traded custody")]
    InvalidShortCollateral,
    #[msg("Swap needs two different custodies")]
    SameCustody,
    #[msg("Position is not liquidatable")]
    NotLiquidatable,
    #[msg("Position does not match the accounts given")]
    InvalidPosition,
    #[msg("Close size must be between 1 and the position size")]
    InvalidCloseSize,
    #[msg("Custody still holds tokens or open positions")]
    CustodyNotEmpty,
    #[msg("Pool still has custodies or LP tokens")]
    PoolNotEmpty,
    #[msg("Not enough protocol fees")]
    InsufficientProtocolFees,
    #[msg("Pool has no value")]
    EmptyPool,
    #[msg("Amounts out of range for this calculation (e.g. more LP tokens than exist, or a size that rounds to zero)")]
    InvalidCalculationInput,
    #[msg("Invalid liquidation configuration")]
    InvalidLiquidationConfig,
    #[msg("Invalid funding configuration")]
    InvalidFundingConfig,
    #[msg("Invalid slippage configuration")]
    InvalidSlippageConfig,
    #[msg("Invalid payoff configuration (the payoff is fixed when the market is created)")]
    InvalidPayoffConfig,
    #[msg("This custody is a synthetic payoff market: it holds no tokens")]
    SyntheticCustody,
    #[msg("Payoff markets take collateral in a stable custody")]
    InvalidPayoffCollateral,
    #[msg("Trade size is below the custody's minimum")]
    TradeTooSmall,
    #[msg("Deposit is below the custody's minimum")]
    DepositTooSmall,
    #[msg("A payout cannot go to a token account of the program's transfer authority (a pool vault)")]
    ReceivingAccountIsVault,
    #[msg("A partial close must cover its own fees")]
    CloseTooSmall,
}

impl From<crate::math::MathError> for PerpoolError {
    fn from(err: crate::math::MathError) -> Self {
        match err {
            crate::math::MathError::DivisionByZero => PerpoolError::DivisionByZero,
            crate::math::MathError::InvalidInput => PerpoolError::InvalidCalculationInput,
            crate::math::MathError::Overflow => PerpoolError::MathOverflow,
        }
    }
}

impl From<crate::math::MathError> for anchor_lang::error::Error {
    fn from(err: crate::math::MathError) -> Self {
        PerpoolError::from(err).into()
    }
}
