//! The seed of the store's random generator, and the generator.
//!
//! Everything the component can gather goes through one SHA-512 ([`Pool`]): RDRAND output
//! where the CPU has it, a seed handed in by the system description, the instance's
//! generation, and the time-stamp counter read between system calls. The first 32 bytes of the
//! digest seed a ChaCha20 generator ([`Rng`]). Without RDRAND (QEMU's default `qemu64` CPU has
//! none) and without a seed from the description (xtask makes one at build time where the
//! description asks), the only unpredictability is the TSC's value and jitter at start:
//! enough for distinct keys per boot, not enough against an attacker who can guess the boot
//! timing. docs/SERVICES.md says so too.

use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

/// The store's random generator.
pub type Rng = rand_chacha::ChaCha20Rng;

/// How many TSC readings [`gather`] takes.
pub const TSC_SAMPLES: usize = 256;
/// How many RDRAND words [`gather`] takes when the CPU has RDRAND.
pub const RDRAND_WORDS: usize = 8;

/// A hash every input is absorbed into, each with its label and length so that no two
/// sequences of inputs collide.
#[derive(Clone)]
pub struct Pool {
    hash: Sha512,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        let mut hash = Sha512::new();
        hash.update(b"tessera keystore seed v1");
        Pool { hash }
    }

    /// Absorbs `bytes` under `label`.
    pub fn absorb(&mut self, label: &str, bytes: &[u8]) {
        self.hash.update((label.len() as u64).to_le_bytes());
        self.hash.update(label.as_bytes());
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(bytes);
    }

    /// The generator seeded from everything absorbed.
    pub fn finish(self) -> Rng {
        let mut digest: [u8; 64] = self.hash.finalize().into();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&digest[..32]);
        let rng = Rng::from_seed(seed);
        digest.zeroize();
        seed.zeroize();
        rng
    }
}

/// What [`gather`] found, for the component's start-up line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gathered {
    /// RDRAND words absorbed (0 without RDRAND).
    pub rdrand_words: usize,
    /// TSC readings absorbed.
    pub tsc_samples: usize,
}

/// Absorbs [`RDRAND_WORDS`] from `rdrand` (while it gives any) and [`TSC_SAMPLES`] readings of
/// `tsc`, calling `pause` (a system call, whose duration varies) between readings.
pub fn gather(
    pool: &mut Pool,
    mut rdrand: impl FnMut() -> Option<u64>,
    mut tsc: impl FnMut() -> u64,
    mut pause: impl FnMut(),
) -> Gathered {
    let mut rdrand_words = 0;
    while rdrand_words < RDRAND_WORDS {
        let Some(mut word) = rdrand() else { break };
        pool.absorb("rdrand", &word.to_le_bytes());
        word.zeroize();
        rdrand_words += 1;
    }
    let mut readings = [0u64; TSC_SAMPLES];
    for r in readings.iter_mut() {
        *r = tsc();
        pause();
    }
    let mut bytes = [0u8; TSC_SAMPLES * 8];
    for (chunk, r) in bytes.chunks_exact_mut(8).zip(readings.iter()) {
        chunk.copy_from_slice(&r.to_le_bytes());
    }
    pool.absorb("tsc", &bytes);
    bytes.zeroize();
    readings.zeroize();
    Gathered {
        rdrand_words,
        tsc_samples: TSC_SAMPLES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::RngCore;

    fn first_word(pool: Pool) -> u64 {
        pool.finish().next_u64()
    }

    #[test]
    fn every_input_changes_the_generator() {
        let base = || {
            let mut p = Pool::new();
            p.absorb("seed", &[1; 32]);
            p
        };
        let same = first_word(base());
        assert_eq!(same, first_word(base()));
        let mut other = base();
        other.absorb("generation", &[0]);
        assert_ne!(same, first_word(other));
        // Labels and lengths are absorbed too: moving a byte between inputs changes the seed.
        let mut a = Pool::new();
        a.absorb("x", b"ab");
        a.absorb("x", b"c");
        let mut b = Pool::new();
        b.absorb("x", b"a");
        b.absorb("x", b"bc");
        assert_ne!(first_word(a), first_word(b));
    }

    #[test]
    fn gather_takes_rdrand_while_it_lasts_and_every_tsc_reading() {
        let mut words = [5u64, 6, 7].into_iter();
        let mut ticks = 0u64;
        let mut pauses = 0;
        let mut pool = Pool::new();
        let got = gather(
            &mut pool,
            || words.next(),
            || {
                ticks += 3;
                ticks
            },
            || pauses += 1,
        );
        assert_eq!(
            got,
            Gathered {
                rdrand_words: 3,
                tsc_samples: TSC_SAMPLES
            }
        );
        assert_eq!(pauses, TSC_SAMPLES);
        // A different TSC trace gives a different generator.
        let mut again = Pool::new();
        let mut words = [5u64, 6, 7].into_iter();
        let mut t = 0u64;
        gather(
            &mut again,
            || words.next(),
            || {
                t += 4;
                t
            },
            || {},
        );
        assert_ne!(first_word(pool), first_word(again));
    }
}
