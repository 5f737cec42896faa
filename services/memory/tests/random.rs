//! Long random sequences of requests: after every one the tree tiles every untyped, the
//! ledgers agree with it, and each step is one the kernel would perform.

mod common;

use common::{pool, system, Rng};
use memory::Error;
use sysdesc::ComponentId;

#[test]
fn random_sequences_keep_every_invariant() {
    let s = system();
    let clients: Vec<ComponentId> = s.iter().map(|(id, _)| id).collect();
    let regions = ["ring", "big", "missing"];
    for seed in 1..=40u64 {
        let (mut m, mut caps) = pool(&s);
        let baseline = m.totals();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for _ in 0..400 {
            let client = clients[rng.below(clients.len() as u64) as usize];
            match rng.below(10) {
                0..=4 => {
                    let bits = 11 + rng.below(10) as u8;
                    match m.alloc(client, bits) {
                        Ok(x) => {
                            assert_eq!(x.block.paddr % x.block.bytes(), 0);
                            caps.perform(&x.steps);
                            caps.hand(x.block.id);
                        }
                        Err(e) => assert!(
                            matches!(e, Error::BadSize | Error::OverBudget | Error::OutOfMemory),
                            "{e:?}"
                        ),
                    }
                }
                5..=6 => {
                    let held = m.blocks(client);
                    if !held.is_empty() {
                        let b = held[rng.below(held.len() as u64) as usize];
                        caps.perform(&m.free(client, b.id).unwrap());
                    }
                }
                7 => caps.perform(&m.release_all(client).unwrap()),
                _ => {
                    let r = regions[rng.below(3) as usize];
                    match m.attach(client, r) {
                        Ok(x) => caps.perform(&x.steps),
                        Err(e) => assert!(
                            matches!(e, Error::Denied | Error::UnknownRegion | Error::OutOfMemory),
                            "{e:?}"
                        ),
                    }
                }
            }
            m.check().unwrap();
            assert_eq!(caps.live.len(), m.block_count());
            let t = m.totals();
            assert_eq!(t.free + t.clients + t.shared, t.total);
        }
        for &client in &clients {
            caps.perform(&m.release_all(client).unwrap());
        }
        assert_eq!(m.totals(), baseline, "seed {seed}");
        assert_eq!(m.block_count(), 2);
    }
}
