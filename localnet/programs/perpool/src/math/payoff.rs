//! Payoff markets (Perennial style): a market trades `payoff(P)` of an oracle price `P`.
//!
//! | payoff   | value per unit                    | example                                  |
//! |----------|-----------------------------------|------------------------------------------|
//! | `Spot`   | `P` (a real token custody)         | SOL                                      |
//! | `Linear` | `k × P`                           | k = 3: "3x ETH"                          |
//! | `Square` | `k × P²`                          | k = 0.001: ETH $1000 → $1000 per unit    |
//! | `Sqrt`   | `k × √P`                          | k = 10: ETH $10000 → $1000 per unit      |
//!
//! `k` has [`RATE_DECIMALS`](super::RATE_DECIMALS) = 9 decimals. Every payoff is increasing in
//! `P`, so "higher of spot and EMA" keeps its meaning after the transform. The result is a
//! 9-decimal price, rounded down once per multiplication/division step.

use super::checked::{mul_div_ceil_u64, mul_div_floor, to_u64};
use super::{MathError, MathResult, OraclePrice, BPS_DENOMINATOR, RATE_ONE};

/// Shape of a market's payoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoffFn {
    Spot,
    Linear,
    Square,
    Sqrt,
}

/// `floor(√n)` for u128 (Newton's method; exact).
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Start above the root: 2^ceil(bits/2).
    let bits = 128 - n.leading_zeros();
    let mut x = 1u128 << bits.div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// `payoff(P)` as a 9-decimal price. `Spot` returns `price` unchanged (no rescaling, so real
/// token custodies keep their oracle precision). `Overflow` if the value does not fit u64 (pick
/// a smaller `k` for P² of large prices); `InvalidInput` for a zero `k` on a payoff market.
pub fn payoff_price(payoff: PayoffFn, scale_9dp: u64, price: &OraclePrice) -> MathResult<OraclePrice> {
    if payoff == PayoffFn::Spot {
        return Ok(*price);
    }
    if scale_9dp == 0 {
        return Err(MathError::InvalidInput);
    }
    let p = u128::from(price.to_price_9dp_floor()?);
    let one = u128::from(RATE_ONE);
    let shaped = match payoff {
        PayoffFn::Spot => p,
        PayoffFn::Linear => p,
        // P² in 9 dp: p × p / 1e9.
        PayoffFn::Square => mul_div_floor(p, p, one)?,
        // √P in 9 dp: √(p / 1e9) × 1e9 = √(p × 1e9).
        PayoffFn::Sqrt => isqrt(p.checked_mul(one).ok_or(MathError::Overflow)?),
    };
    let value = to_u64(mul_div_floor(shaped, u128::from(scale_9dp), one)?)?;
    Ok(OraclePrice::from_price_9dp(value))
}

/// The most positions of total size `size_usd` on a payoff market can win: `max_profit_bps` of
/// their size, rounded up. Each position locks this much of its size at open and is never paid
/// more, so it is also the most the pool owes an open book, however far the price has run.
pub fn max_profit_usd(size_usd: u64, max_profit_bps: u64) -> MathResult<u64> {
    mul_div_ceil_u64(size_usd, max_profit_bps, BPS_DENOMINATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: u64 = 1_000_000_000;

    fn usd(p: u64) -> OraclePrice {
        OraclePrice::new(p, 0)
    }

    #[test]
    fn isqrt_is_exact_floor() {
        for n in [0u128, 1, 2, 3, 4, 15, 16, 17, 99, 100, 1 << 64, u128::MAX] {
            let r = isqrt(n);
            assert!(r * r <= n, "{n}");
            assert!((r + 1).checked_mul(r + 1).map_or(true, |s| s > n), "{n}");
        }
    }

    #[test]
    fn linear_square_sqrt_examples() {
        // 1·ETH at $1000 → $1000 per unit; 3·ETH → $3000.
        assert_eq!(payoff_price(PayoffFn::Linear, K1, &usd(1000)).unwrap().to_price_9dp_floor(), Ok(1_000 * K1));
        assert_eq!(payoff_price(PayoffFn::Linear, 3 * K1, &usd(1000)).unwrap().to_price_9dp_floor(), Ok(3_000 * K1));
        // 0.001·ETH² at $1000 → $1000; at $2000 → $4000.
        let k = 1_000_000;
        assert_eq!(payoff_price(PayoffFn::Square, k, &usd(1000)).unwrap().price, 1_000 * K1);
        assert_eq!(payoff_price(PayoffFn::Square, k, &usd(2000)).unwrap().price, 4_000 * K1);
        // 10·√ETH at $10000 → $1000; at $2 → 10·1.414213562.
        assert_eq!(payoff_price(PayoffFn::Sqrt, 10 * K1, &usd(10_000)).unwrap().price, 1_000 * K1);
        assert_eq!(payoff_price(PayoffFn::Sqrt, 10 * K1, &usd(2)).unwrap().price, 14_142_135_620);
    }

    #[test]
    fn spot_is_untouched_and_zero_scale_is_refused() {
        let p = OraclePrice::new(15_025, -2);
        let out = payoff_price(PayoffFn::Spot, 0, &p).unwrap();
        assert_eq!((out.price, out.exponent), (15_025, -2));
        assert_eq!(payoff_price(PayoffFn::Square, 0, &p), Err(MathError::InvalidInput));
    }

    #[test]
    fn overflow_is_reported() {
        // $200k squared with k = 1: 4e10 dollars = 4e19 9-dp units > u64::MAX.
        assert_eq!(payoff_price(PayoffFn::Square, K1, &usd(200_000)), Err(MathError::Overflow));
    }

    #[test]
    fn max_profit_is_the_capped_share_of_size_rounded_up() {
        assert_eq!(max_profit_usd(1_000_000_000, 10_000), Ok(1_000_000_000));
        assert_eq!(max_profit_usd(1_000_000_000, 5_000), Ok(500_000_000));
        assert_eq!(max_profit_usd(1_000_000_000, 30_000), Ok(3_000_000_000));
        assert_eq!(max_profit_usd(3, 5_000), Ok(2));
        assert_eq!(max_profit_usd(0, 5_000), Ok(0));
        assert_eq!(max_profit_usd(u64::MAX, 20_000), Err(MathError::Overflow));
    }

    #[test]
    fn payoffs_are_monotonic() {
        for kind in [PayoffFn::Linear, PayoffFn::Square, PayoffFn::Sqrt] {
            let mut last = 0;
            for p in [1u64, 2, 3, 10, 999, 1000, 1001, 50_000] {
                let v = payoff_price(kind, 1_000, &usd(p)).unwrap().price;
                assert!(v >= last, "{kind:?} {p}");
                last = v;
            }
        }
    }
}
