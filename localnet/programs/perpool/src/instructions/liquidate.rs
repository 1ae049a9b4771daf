use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::{InsuranceFundChanged, PositionLiquidated},
    math,
    state::{load_position_custodies, sync_same_custody, Custody, Perpool, Pool, Position},
};

/// Liquidates an under-margined position by the custody's liquidation ladder: the step that
/// applies closes its fraction of the position. Anyone may call; the caller receives the
/// liquidator's part of the discount, the insurance fund (up to its cap, the excess to the
/// protocol) the rest of it. On a full close what is left goes to the owner's token account;
/// on a partial one it stays in the position as collateral. Bad debt is covered from the
/// collateral custody's insurance fund before the LPs.
#[derive(Accounts)]
pub struct Liquidate<'info> {
    pub signer: Signer<'info>,

    #[account(
        mut,
        constraint = receiving_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = receiving_account.owner != transfer_authority.key() @ PerpoolError::ReceivingAccountIsVault
    )]
    pub receiving_account: Box<Account<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = owner_receiving_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = owner_receiving_account.owner == position.owner @ PerpoolError::InvalidTokenAccount
    )]
    pub owner_receiving_account: Box<Account<'info, TokenAccount>>,

    /// CHECK: the position owner, who receives the position account's rent.
    #[account(mut, address = position.owner @ PerpoolError::InvalidPosition)]
    pub owner: UncheckedAccount<'info>,

    /// CHECK: transfer authority PDA, signs for the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(
        mut,
        has_one = pool @ PerpoolError::InvalidPosition,
        has_one = custody @ PerpoolError::InvalidPosition,
        has_one = collateral_custody @ PerpoolError::InvalidPosition,
        seeds = [Position::SEED, position.owner.as_ref(), pool.key().as_ref(), custody.key().as_ref(), position.side.seed()],
        bump = position.bump
    )]
    pub position: Box<Account<'info, Position>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), collateral_custody.mint.as_ref()], bump = collateral_custody.bump)]
    pub collateral_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the collateral custody's oracle configuration when read.
    pub collateral_custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = collateral_custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub collateral_custody_token_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

pub fn handle_liquidate(ctx: Context<Liquidate>) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_liquidation)?;
    let now = Clock::get()?.unix_timestamp;
    let aum = ctx.accounts.pool.aum_usd;
    let (prices, collateral_prices, same) = load_position_custodies(
        &mut ctx.accounts.custody,
        &ctx.accounts.custody_oracle,
        &mut ctx.accounts.collateral_custody,
        &ctx.accounts.collateral_custody_oracle,
        now,
        aum,
    )?;
    let position = &ctx.accounts.position;
    let custody = &ctx.accounts.custody;
    let step = position
        .liquidation_step(custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, aum)?
        .ok_or(PerpoolError::NotLiquidatable)?;
    let ladder = custody.liquidation.ladder();
    let close_bps = ladder[step].close_bps;
    let full = close_bps == math::BPS_DENOMINATOR;
    let discount_bps = math::step_discount_bps(custody.fees.liquidation_reward_bps, step, ladder.len())?;
    // The flat auto-close fee comes out of what the slice has left, never into bad debt (a
    // partial step must not leave a loss behind while the rest of the position stays open).
    let slice = position.quote_close(custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, close_bps, aum, 0)?;
    let auto_close_fee_usd = custody.liquidation.auto_close_fee_usd.min(slice.payout_usd);
    let q = if auto_close_fee_usd == 0 {
        slice
    } else {
        position.quote_close(custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, close_bps, aum, auto_close_fee_usd)?
    };
    let insurance_fraction_bps = custody.liquidation.insurance_fund_fraction_bps;
    let collateral_custody = &ctx.accounts.collateral_custody;
    let decimals = collateral_custody.decimals;
    let fees_usd = math::checked_sum(&[q.close_fee_usd, q.borrow_fee_usd, q.auto_close_fee_usd])?;
    // Collected out of what the pool keeps (settle_close), so a crashed price saturates it.
    let fee_amount = math::usd_to_token_floor_saturating(fees_usd, decimals, &collateral_prices.max())?;
    // The discount comes out of what the slice pays out; the fund takes its share up to its cap.
    let discount_usd = math::fee_usd(q.size_usd, discount_bps)?;
    let discount_amount = math::usd_to_token_floor_saturating(discount_usd, decimals, &collateral_prices.max())?.min(q.payout_amount);
    let split = math::split_discount(discount_amount, insurance_fraction_bps, collateral_custody.insurance_room(&collateral_prices)?)?;
    let remainder = q.payout_amount - discount_amount;
    // A partial liquidation deleverages: what is left of the slice stays in the position.
    let (owner_amount, retained_amount) = if full { (remainder, 0) } else { (0, remainder) };
    let retained_usd = math::token_to_usd_floor(retained_amount, decimals, &collateral_prices.min())?;
    let borrow_still_owed = position.borrow_fee_usd(collateral_custody)?.checked_sub(q.borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?;
    let funding_still_owed = position.funding_after(custody, &q)?;

    for (to, amount) in [
        (ctx.accounts.receiving_account.to_account_info(), split.liquidator),
        (ctx.accounts.owner_receiving_account.to_account_info(), owner_amount),
    ] {
        perpool.transfer_from_vault(
            ctx.accounts.collateral_custody_token_account.to_account_info(),
            to,
            ctx.accounts.transfer_authority.to_account_info(),
            ctx.accounts.token_program.to_account_info(),
            amount,
        )?;
    }
    let (side, entry, old_size) = (position.side, position.price, position.size_usd);
    let collateral_custody_key = ctx.accounts.collateral_custody.key();
    let (covered, fund_balance) = {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        // settle_close treats the whole payout as leaving the vault; the parts that stay are
        // credited back to the insurance fund, the protocol and the position's collateral.
        cc.settle_close(q.collateral_amount, q.locked_amount, q.payout_amount, fee_amount)?;
        cc.add_to_insurance(split.insurance)?;
        cc.assets.protocol_fees = cc.assets.protocol_fees.checked_add(split.protocol).ok_or(PerpoolError::MathOverflow)?;
        cc.assets.collateral = cc.assets.collateral.checked_add(retained_amount).ok_or(PerpoolError::MathOverflow)?;
        let covered = cc.cover_bad_debt(q.bad_debt_usd, &collateral_prices)?;
        cc.refresh_borrow_rate()?;
        (covered, cc.insurance.balance)
    };
    {
        let c: &mut Custody = &mut ctx.accounts.custody;
        c.remove_from_book(side, entry, old_size, old_size - q.size_usd, q.collateral_usd, full)?;
        let totals = c.totals_mut(side);
        totals.collateral_usd = totals.collateral_usd.checked_add(retained_usd).ok_or(PerpoolError::MathOverflow)?;
        c.stats.volume_liquidation_usd = c.stats.volume_liquidation_usd.saturating_add(q.size_usd);
        c.stats.fees_liquidation_usd = c.stats.fees_liquidation_usd.saturating_add(q.close_fee_usd.saturating_add(q.auto_close_fee_usd));
        c.stats.fees_borrow_usd = c.stats.fees_borrow_usd.saturating_add(q.borrow_fee_usd);
        c.refresh_funding_rate(aum)?;
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);
    if split.insurance > 0 || covered > 0 {
        emit!(InsuranceFundChanged {
            custody: collateral_custody_key,
            inflow: split.insurance,
            outflow: covered,
            balance: fund_balance,
            bad_debt_usd: q.bad_debt_usd,
        });
    }
    let borrow_index = ctx.accounts.collateral_custody.borrow_state.cumulative_interest;
    let funding_index = ctx.accounts.custody.funding_index(side);
    let liquidator = ctx.accounts.signer.key();
    let position = &mut ctx.accounts.position;
    emit!(PositionLiquidated {
        owner: position.owner,
        position: position.key(),
        liquidator,
        side,
        exit_price: q.exit_price,
        size_usd: q.size_usd,
        profit_usd: q.profit_usd,
        loss_usd: q.loss_usd,
        fee_usd: q.close_fee_usd,
        borrow_fee_usd: q.borrow_fee_usd,
        reward_amount: split.liquidator,
        owner_amount,
        bad_debt_usd: q.bad_debt_usd,
        step: u8::try_from(step).map_err(|_| PerpoolError::MathOverflow)?,
        close_bps,
        discount_amount,
        insurance_amount: split.insurance,
        protocol_amount: split.protocol,
        auto_close_fee_usd: q.auto_close_fee_usd,
        funding_paid_usd: q.funding_paid_usd,
        funding_received_usd: q.funding_received_usd,
        retained_amount,
        remaining_size_usd: old_size - q.size_usd,
    });
    if full {
        position.close(ctx.accounts.owner.to_account_info())?;
    } else {
        position.size_usd = old_size - q.size_usd;
        position.collateral_usd = position
            .collateral_usd
            .checked_sub(q.collateral_usd)
            .and_then(|c| c.checked_add(retained_usd))
            .ok_or(PerpoolError::MathOverflow)?;
        position.collateral_amount = position
            .collateral_amount
            .checked_sub(q.collateral_amount)
            .and_then(|c| c.checked_add(retained_amount))
            .ok_or(PerpoolError::MathOverflow)?;
        position.locked_amount = position.locked_amount.checked_sub(q.locked_amount).ok_or(PerpoolError::MathOverflow)?;
        position.borrow_index_snapshot = borrow_index;
        position.unpaid_borrow_fee_usd = borrow_still_owed;
        position.funding_index_snapshot = funding_index;
        position.unpaid_funding_usd = funding_still_owed;
        position.update_time = now;
    }
    Ok(())
}
