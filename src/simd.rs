//! Register-level helpers shared by the table reader (`data`) and the
//! runtime's kernels: small blocks of floats transposed in registers.

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    /// Eight vectors of eight as the columns of an 8 x 8 matrix: vector q
    /// of the result holds value q of each input, in the inputs' order.
    ///
    /// # Safety
    /// The CPU must have AVX.
    #[target_feature(enable = "avx")]
    pub unsafe fn transpose8(c: [__m256; 8]) -> [__m256; 8] {
        let (t0, t1) = (
            _mm256_unpacklo_ps(c[0], c[1]),
            _mm256_unpackhi_ps(c[0], c[1]),
        );
        let (t2, t3) = (
            _mm256_unpacklo_ps(c[2], c[3]),
            _mm256_unpackhi_ps(c[2], c[3]),
        );
        let (t4, t5) = (
            _mm256_unpacklo_ps(c[4], c[5]),
            _mm256_unpackhi_ps(c[4], c[5]),
        );
        let (t6, t7) = (
            _mm256_unpacklo_ps(c[6], c[7]),
            _mm256_unpackhi_ps(c[6], c[7]),
        );
        // Values q and q + 4 of inputs 0-3 (low and high lane), then of 4-7.
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// Four vectors of four as the columns of a 4 x 4 matrix (SSE, part of
    /// every x86_64): vector q of the result holds value q of each input.
    #[inline(always)]
    pub fn transpose4([a, b, c, d]: [__m128; 4]) -> [__m128; 4] {
        // SAFETY: SSE is present on every x86_64; the shuffles touch no
        // memory.
        unsafe {
            let (ab_low, cd_low) = (_mm_unpacklo_ps(a, b), _mm_unpacklo_ps(c, d));
            let (ab_high, cd_high) = (_mm_unpackhi_ps(a, b), _mm_unpackhi_ps(c, d));
            [
                _mm_movelh_ps(ab_low, cd_low),
                _mm_movehl_ps(cd_low, ab_low),
                _mm_movelh_ps(ab_high, cd_high),
                _mm_movehl_ps(cd_high, ab_high),
            ]
        }
    }
}
