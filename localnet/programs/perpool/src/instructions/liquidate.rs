use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::PositionLiquidated,
    math,
    state::{load_position_custodies, sync_same_custody, Custody, Perpool, Pool, Position},
};

/// Closes an under-margined position. Anyone may call; the caller receives the liquidation
/// reward and the rest of the payout goes to the owner's token account.
#[derive(Accounts)]
pub struct Liquidate<'info> {
    pub signer: Signer<'info>,

    #[account(mut, constraint = receiving_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount)]
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
        close = owner,
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
    let (prices, collateral_prices, same) = load_position_custodies(
        &mut ctx.accounts.custody,
        &ctx.accounts.custody_oracle,
        &mut ctx.accounts.collateral_custody,
        &ctx.accounts.collateral_custody_oracle,
        now,
    )?;
    let position = &ctx.accounts.position;
    require!(
        position.is_liquidatable(&ctx.accounts.custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices)?,
        PerpoolError::NotLiquidatable
    );
    let q = position.quote_close(&ctx.accounts.custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, math::BPS_DENOMINATOR)?;
    let decimals = ctx.accounts.collateral_custody.decimals;
    let fees_usd = q.close_fee_usd.checked_add(q.borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?;
    let fee_amount = math::usd_to_token_floor(fees_usd, decimals, &collateral_prices.max())?;
    let reward_usd = math::fee_usd(position.size_usd, ctx.accounts.custody.fees.liquidation_reward_bps)?;
    let reward_amount = math::usd_to_token_floor(reward_usd, decimals, &collateral_prices.max())?.min(q.payout_amount);
    let owner_amount = q.payout_amount - reward_amount;

    for (to, amount) in [
        (ctx.accounts.receiving_account.to_account_info(), reward_amount),
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
    let (side, entry, size) = (position.side, position.price, position.size_usd);
    {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        cc.settle_close(q.collateral_amount, q.locked_amount, q.payout_amount, fee_amount)?;
    }
    {
        let c: &mut Custody = &mut ctx.accounts.custody;
        c.remove_from_book(side, entry, size, 0, q.collateral_usd, true)?;
        c.stats.volume_liquidation_usd = c.stats.volume_liquidation_usd.saturating_add(size);
        c.stats.fees_liquidation_usd = c.stats.fees_liquidation_usd.saturating_add(q.close_fee_usd);
        c.stats.fees_borrow_usd = c.stats.fees_borrow_usd.saturating_add(q.borrow_fee_usd);
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);
    emit!(PositionLiquidated {
        owner: position.owner,
        position: position.key(),
        liquidator: ctx.accounts.signer.key(),
        side,
        exit_price: q.exit_price,
        size_usd: size,
        profit_usd: q.profit_usd,
        loss_usd: q.loss_usd,
        fee_usd: q.close_fee_usd,
        borrow_fee_usd: q.borrow_fee_usd,
        reward_amount,
        owner_amount,
        bad_debt_usd: q.bad_debt_usd,
    });
    Ok(())
}
