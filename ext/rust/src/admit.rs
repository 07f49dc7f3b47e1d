//! Admission's bookkeeping, one call per batch: [`NonceBook`], the
//! mempool's per-sender nonce sequence and its set of pending transaction ids.
//!
//! A sender's transactions are admitted in nonce order: the next one must
//! carry the sender's committed nonce plus its count of pending (admitted,
//! not yet committed) transactions. The book keeps that count and the
//! committed nonce only for senders with pending transactions; for any other
//! sender the caller reads the committed nonce from state (the senders
//! [`NonceBook::unknown`] lists) and passes it to [`NonceBook::admit`].
//!
//! Keys are hashed with the standard library's SipHash under a per-process
//! random key: sender keys and transaction ids are chosen by whoever
//! submits, so the tables must not be open to collision flooding.
//!
//! A replicated node's CheckTx keeps its own, simpler view ([`check`]):
//! CometBFT holds the mempool there.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

pub mod check;

/// Width of a sender key and of a transaction id, in bytes.
pub const WIDTH: usize = 32;
pub type Key = [u8; WIDTH];

/// What became of one row of [`NonceBook::admit`], in the order the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    Accepted = 0,
    /// Its transaction id is already pending.
    Duplicate = 1,
    NonceTooLow = 2,
    NonceTooHigh = 3,
    /// The book holds `txs_max` transactions.
    Full = 4,
    /// Its sender has `sender_pending_max` transactions pending.
    SenderLimit = 5,
}

/// The distinct keys of `senders` that `map` lacks, in the order they first appear.
fn missing_from<V>(map: &HashMap<Key, V>, senders: &[Key]) -> Vec<Key> {
    let mut seen = HashSet::with_capacity(senders.len());
    senders
        .iter()
        .filter(|s| !map.contains_key(*s) && seen.insert(**s))
        .copied()
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The sender's committed nonce, as this book knows it.
    pub committed: u64,
    /// Its transactions admitted and not yet committed.
    pub count: u32,
}

/// The mempool's bookkeeping (module docs). Bounded: at most `txs_max`
/// pending ids, at most `sender_pending_max` per sender.
#[derive(Debug)]
pub struct NonceBook {
    senders: HashMap<Key, Pending>,
    ids: HashSet<Key>,
    txs_max: usize,
    sender_pending_max: u32,
}

/// Why [`NonceBook::done`] refused a block (nothing was changed).
#[derive(Debug, PartialEq, Eq)]
pub enum DoneError {
    /// A sender has fewer pending transactions than the block commits.
    NotPending(Key),
    /// A transaction id is not pending (or is listed twice).
    UnknownId(Key),
}

impl NonceBook {
    pub fn new(txs_max: usize, sender_pending_max: u32) -> NonceBook {
        NonceBook {
            senders: HashMap::new(),
            ids: HashSet::new(),
            txs_max,
            sender_pending_max,
        }
    }

    /// Transactions pending.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Senders with pending transactions.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    pub fn pending(&self, sender: &Key) -> Option<Pending> {
        self.senders.get(sender).copied()
    }

    pub fn contains_id(&self, id: &Key) -> bool {
        self.ids.contains(id)
    }

    /// The distinct senders among `senders` without pending transactions,
    /// in the order they first appear: whose committed nonces `admit` needs.
    pub fn unknown(&self, senders: &[Key]) -> Vec<Key> {
        missing_from(&self.senders, senders)
    }

    /// A verdict per row (`senders[i]`, `ids[i]`, `nonces[i]`), in row order;
    /// the accepted rows are pending from now on. `committed` gives the
    /// committed nonce of every sender [`Self::unknown`] listed (others are
    /// ignored for senders the book knows).
    ///
    /// # Panics
    /// If the three columns differ in length.
    pub fn admit(
        &mut self,
        senders: &[Key],
        ids: &[Key],
        nonces: &[u64],
        committed: &[(Key, u64)],
    ) -> Vec<Verdict> {
        assert!(senders.len() == ids.len() && ids.len() == nonces.len());
        let fresh: HashMap<Key, u64> = committed.iter().copied().collect();
        let mut out = Vec::with_capacity(senders.len());
        for ((sender, id), &nonce) in senders.iter().zip(ids).zip(nonces) {
            out.push(self.admit_one(sender, id, nonce, &fresh));
        }
        out
    }

    fn admit_one(
        &mut self,
        sender: &Key,
        id: &Key,
        nonce: u64,
        fresh: &HashMap<Key, u64>,
    ) -> Verdict {
        if self.ids.contains(id) {
            return Verdict::Duplicate;
        }
        let full = self.ids.len() >= self.txs_max;
        // One lookup of the sender: its entry is created only if the row is accepted.
        let entry = self.senders.entry(*sender);
        let Pending { committed, count } = match &entry {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(_) => match fresh.get(sender) {
                Some(&committed) => Pending {
                    committed,
                    count: 0,
                },
                // Its committed nonce was not given: nothing to sequence against.
                None => return Verdict::NonceTooHigh,
            },
        };
        if nonce == u64::MAX {
            // Its successor is no u64: the executor could not store it.
            return Verdict::NonceTooHigh;
        }
        // In u128: a committed nonce near 2^64 must not wrap.
        let (nonce, expected) = (u128::from(nonce), u128::from(committed) + u128::from(count));
        if nonce != expected {
            return if nonce < expected {
                Verdict::NonceTooLow
            } else {
                Verdict::NonceTooHigh
            };
        }
        if full {
            return Verdict::Full;
        }
        if count >= self.sender_pending_max {
            return Verdict::SenderLimit;
        }
        let next = Pending {
            committed,
            count: count + 1,
        };
        match entry {
            Entry::Occupied(mut e) => *e.get_mut() = next,
            Entry::Vacant(e) => {
                e.insert(next);
            }
        }
        self.ids.insert(*id);
        Verdict::Accepted
    }

    /// A block committed these transactions (`senders[i]`'s `ids[i]`): their
    /// nonces now live in state. Checked in full before anything changes.
    ///
    /// # Panics
    /// If the two columns differ in length.
    pub fn done(&mut self, senders: &[Key], ids: &[Key]) -> Result<(), DoneError> {
        assert_eq!(senders.len(), ids.len());
        let mut counts: HashMap<Key, u32> = HashMap::with_capacity(senders.len());
        for s in senders {
            *counts.entry(*s).or_default() += 1;
        }
        for (s, &n) in &counts {
            if self.senders.get(s).is_none_or(|p| p.count < n) {
                return Err(DoneError::NotPending(*s));
            }
        }
        // One lookup per id: removed, and put back if a later one is not pending.
        for (k, id) in ids.iter().enumerate() {
            if !self.ids.remove(id) {
                self.ids.extend(&ids[..k]);
                return Err(DoneError::UnknownId(*id));
            }
        }
        for (s, n) in counts {
            let p = self.senders.get_mut(&s).expect("checked above");
            p.committed = p.committed.saturating_add(u64::from(n));
            p.count -= n;
            if p.count == 0 {
                self.senders.remove(&s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> Key {
        [b; WIDTH]
    }

    #[test]
    fn sequences_each_sender_and_refuses_in_check_order() {
        let mut book = NonceBook::new(4, 2);
        let got = book.admit(
            &[k(1), k(1), k(1), k(2), k(2)],
            &[k(10), k(11), k(12), k(11), k(13)],
            &[5, 6, 7, 0, 1],
            &[(k(1), 5), (k(2), 1)],
        );
        use Verdict::*;
        assert_eq!(got, [Accepted, Accepted, SenderLimit, Duplicate, Accepted]);
        assert_eq!(book.len(), 3);
        assert_eq!(
            book.pending(&k(1)),
            Some(Pending {
                committed: 5,
                count: 2
            })
        );
        // Known senders need no committed nonce; a fresh one without it is ahead.
        let got = book.admit(
            &[k(2), k(2), k(3), k(4)],
            &[k(20), k(21), k(22), k(23)],
            &[1, 2, 9, 0],
            &[(k(4), 0)],
        );
        assert_eq!(got, [NonceTooLow, Accepted, NonceTooHigh, Full]);
        assert!(book.unknown(&[k(1), k(3), k(3), k(4), k(2)]) == vec![k(3), k(4)]);
    }

    #[test]
    fn done_moves_nonces_into_committed_and_checks_first() {
        let mut book = NonceBook::new(10, 10);
        let got = book.admit(
            &[k(1), k(1), k(2), k(3)],
            &[k(10), k(11), k(12), k(13)],
            &[0, 1, u64::MAX - 1, u64::MAX],
            &[(k(1), 0), (k(2), u64::MAX - 1), (k(3), u64::MAX)],
        );
        // A nonce of 2^64 - 1 has no successor the executor could store.
        assert_eq!(got[2..], [Verdict::Accepted, Verdict::NonceTooHigh]);
        assert_eq!(book.len(), 3);
        // The sequence does not wrap past 2^64 - 1.
        assert_eq!(
            book.admit(&[k(2)], &[k(14)], &[0], &[]),
            [Verdict::NonceTooLow]
        );
        assert_eq!(
            book.done(&[k(1), k(1)], &[k(10), k(10)]),
            Err(DoneError::UnknownId(k(10)))
        );
        assert_eq!(
            book.done(&[k(3)], &[k(10)]),
            Err(DoneError::NotPending(k(3)))
        );
        assert_eq!(book.len(), 3, "a refused done changes nothing");
        book.done(&[k(1)], &[k(10)]).unwrap();
        assert_eq!(
            book.pending(&k(1)),
            Some(Pending {
                committed: 1,
                count: 1
            })
        );
        assert!(!book.contains_id(&k(10)));
        book.done(&[k(1)], &[k(11)]).unwrap();
        assert_eq!(book.pending(&k(1)), None);
        assert_eq!((book.len(), book.senders()), (1, 1));
    }
}
