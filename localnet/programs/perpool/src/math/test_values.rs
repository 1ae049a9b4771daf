//! Deterministic inputs for property-style tests (no extra crates, reproducible failures).

/// Edge values: zero, tiny, decimal boundaries, powers of two, and the top of u64.
pub const SAMPLE_U64S: [u64; 22] = [
    0,
    1,
    2,
    3,
    7,
    9,
    10,
    99,
    100,
    999,
    999_999,
    1_000_000,
    1_000_001,
    123_456_789,
    1_000_000_000,
    4_294_967_296,
    1_000_000_000_007,
    999_999_999_999_999,
    1_000_000_000_000_000_000,
    u64::MAX / 3,
    u64::MAX - 1,
    u64::MAX,
];

/// `count` values from a fixed linear congruential generator, spread over magnitudes by a
/// random right shift so small and large numbers are both common.
pub fn pseudo_random_u64s(count: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed;
    (0..count).map(move |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let shift = (state >> 58) & 63;
        (state ^ (state >> 29)) >> shift
    })
}
