//! A replicated node's CheckTx bookkeeping, one call per batch:
//! [`Sequencer`], each sender's nonce sequence over what this node checked
//! since the last commit, and [`SeenSet`], a bounded set of keys kept
//! oldest-first (signatures this node verified; transactions its API
//! admitted before CometBFT asked).
//!
//! CometBFT keeps the mempool; the app answers CheckTx for each transaction
//! it is offered, then rechecks the whole mempool in order after every
//! commit. So the sequencer's view is rebuilt from scratch at each commit
//! ([`Sequencer::clear`]): a sender's entry is its committed nonce and the
//! next nonce this node expects.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use super::{Key, Verdict};

/// Each sender's `(committed, next)` nonces since the last clear.
#[derive(Debug)]
pub struct Sequencer {
    senders: HashMap<Key, (u64, u64)>,
    pending_max: u64,
}

impl Sequencer {
    /// At most `pending_max` checked transactions ahead of a sender's
    /// committed nonce (a lenient row passes beyond it).
    pub fn new(pending_max: u64) -> Sequencer {
        Sequencer {
            senders: HashMap::new(),
            pending_max,
        }
    }

    /// Senders with an entry.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// `(committed, next)` of a sender with an entry.
    pub fn get(&self, sender: &Key) -> Option<(u64, u64)> {
        self.senders.get(sender).copied()
    }

    /// The distinct senders of `senders` without an entry, in the order
    /// they first appear: whose committed nonces [`Self::check`] needs.
    pub fn unknown(&self, senders: &[Key]) -> Vec<Key> {
        super::missing_from(&self.senders, senders)
    }

    /// A verdict per row, in row order: `Accepted`, `NonceTooLow`,
    /// `NonceTooHigh` or `SenderLimit`. A row with the sender's next nonce
    /// advances it, within `pending_max` of the committed one. A `lenient`
    /// row (admitted already) is accepted whatever its nonce, and advances
    /// its sender only if it carries the next one. `committed` gives the
    /// committed nonce of each sender [`Self::unknown`] listed (each gets an
    /// entry); a sender with neither is ahead (`NonceTooHigh`), and so is
    /// nonce 2^64 - 1, which has no successor to store.
    ///
    /// # Panics
    /// If `senders`, `nonces` and `lenient` (when not empty) differ in length.
    pub fn check(
        &mut self,
        senders: &[Key],
        nonces: &[u64],
        lenient: &[bool],
        committed: &[(Key, u64)],
    ) -> Vec<Verdict> {
        assert_eq!(senders.len(), nonces.len());
        assert!(lenient.is_empty() || lenient.len() == senders.len());
        for &(s, c) in committed {
            self.senders.entry(s).or_insert((c, c));
        }
        let mut out = Vec::with_capacity(senders.len());
        for (i, (sender, &nonce)) in senders.iter().zip(nonces).enumerate() {
            let free = lenient.get(i).copied().unwrap_or(false);
            let Entry::Occupied(mut e) = self.senders.entry(*sender) else {
                out.push(if free {
                    Verdict::Accepted
                } else {
                    Verdict::NonceTooHigh
                });
                continue;
            };
            let (committed, next) = *e.get();
            let verdict = if nonce == next
                && nonce != u64::MAX
                && (free || next - committed < self.pending_max)
            {
                e.get_mut().1 = next + 1;
                Verdict::Accepted
            } else if free {
                Verdict::Accepted
            } else if nonce < next {
                Verdict::NonceTooLow
            } else if nonce > next || nonce == u64::MAX {
                Verdict::NonceTooHigh
            } else {
                Verdict::SenderLimit
            };
            out.push(verdict);
        }
        out
    }

    /// These checked transactions will not reach a block (the mempool
    /// refused them): a sender whose sequence had passed `nonces[i]` goes
    /// back to it, and so its later nonces must be checked again.
    ///
    /// # Panics
    /// If the two columns differ in length.
    pub fn give_back(&mut self, senders: &[Key], nonces: &[u64]) {
        assert_eq!(senders.len(), nonces.len());
        for (sender, &nonce) in senders.iter().zip(nonces) {
            if let Some((committed, next)) = self.senders.get_mut(sender)
                && *committed <= nonce
                && nonce < *next
            {
                *next = nonce;
            }
        }
    }

    /// Forgets every sender (a block committed: the recheck rebuilds them).
    pub fn clear(&mut self) {
        self.senders.clear();
    }
}

/// A set of byte keys of one width, at most `max` of them: adding beyond
/// that forgets the oldest first. A key added again keeps its place.
#[derive(Debug)]
pub struct SeenSet {
    width: usize,
    max: usize,
    /// Each key and the sequence number it was added with.
    keys: HashMap<Box<[u8]>, u64>,
    /// Keys oldest first, with their sequence numbers; an entry whose number
    /// is no longer the key's (it was taken) is skipped and dropped.
    order: VecDeque<(u64, Box<[u8]>)>,
    next: u64,
}

impl SeenSet {
    /// A set of `width`-byte keys (`width` > 0), at most `max` of them.
    pub fn new(width: usize, max: usize) -> SeenSet {
        assert!(width > 0, "keys of at least one byte");
        SeenSet {
            width,
            max,
            keys: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether each key of `packed` (rows of `width` bytes) is in the set.
    pub fn contains(&self, packed: &[u8]) -> Vec<bool> {
        packed
            .chunks_exact(self.width)
            .map(|k| self.keys.contains_key(k))
            .collect()
    }

    /// Adds the rows of `packed` whose `mask` is set (all when `mask` is
    /// empty), then forgets the oldest keys beyond `max`.
    pub fn add(&mut self, packed: &[u8], mask: &[bool]) {
        for (i, k) in packed.chunks_exact(self.width).enumerate() {
            if !mask.is_empty() && !mask.get(i).copied().unwrap_or(false) {
                continue;
            }
            if self.keys.contains_key(k) {
                continue;
            }
            let key: Box<[u8]> = k.into();
            self.keys.insert(key.clone(), self.next);
            self.order.push_back((self.next, key));
            self.next += 1;
        }
        while self.keys.len() > self.max {
            let (seq, key) = self.order.pop_front().expect("every key is in order");
            if self.keys.get(&key) == Some(&seq) {
                self.keys.remove(&key);
            }
        }
        // Taken keys leave entries behind; keep them from outnumbering the live ones.
        if self.order.len() > 2 * self.keys.len() + 64 {
            let keys = &self.keys;
            self.order.retain(|(seq, key)| keys.get(key) == Some(seq));
        }
    }

    /// Removes each key of `packed`; whether it was there, per row.
    pub fn take(&mut self, packed: &[u8]) -> Vec<bool> {
        packed
            .chunks_exact(self.width)
            .map(|k| self.keys.remove(k).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> Key {
        [b; 32]
    }

    #[test]
    fn sequences_like_checktx() {
        let mut seq = Sequencer::new(2);
        let senders = [k(1), k(1), k(1), k(2), k(2), k(3)];
        assert_eq!(seq.unknown(&senders), vec![k(1), k(2), k(3)]);
        use Verdict::*;
        let got = seq.check(
            &senders,
            &[5, 6, 7, 0, 3, 0],
            &[],
            &[(k(1), 5), (k(2), 1), (k(3), 0)],
        );
        assert_eq!(
            got,
            [
                Accepted,
                Accepted,
                SenderLimit,
                NonceTooLow,
                NonceTooHigh,
                Accepted
            ]
        );
        assert_eq!(seq.get(&k(1)), Some((5, 7)));
        assert_eq!(
            seq.get(&k(2)),
            Some((1, 1)),
            "a sender refused still has its entry"
        );
        // Lenient rows pass beyond the limit and out of order; only the next one advances.
        let got = seq.check(&[k(1), k(1), k(2)], &[7, 9, 4], &[true, true, true], &[]);
        assert_eq!(got, [Accepted, Accepted, Accepted]);
        assert_eq!(seq.get(&k(1)), Some((5, 8)));
        assert_eq!(seq.get(&k(2)), Some((1, 1)));
        // A sender without an entry and without a committed nonce is ahead.
        assert_eq!(seq.check(&[k(9)], &[0], &[], &[]), [NonceTooHigh]);
        assert_eq!(seq.check(&[k(9)], &[0], &[true], &[]), [Accepted]);
        // Giving back: only inside (committed, next]; later nonces go with it.
        seq.give_back(&[k(1), k(2), k(3)], &[6, 0, 1]);
        assert_eq!(seq.get(&k(1)), Some((5, 6)));
        assert_eq!(seq.get(&k(2)), Some((1, 1)));
        assert_eq!(seq.get(&k(3)), Some((0, 1)), "nonce 1 was never passed");
        assert_eq!(seq.check(&[k(1)], &[6], &[], &[]), [Accepted]);
        seq.clear();
        assert!(seq.is_empty() && seq.unknown(&[k(1)]) == vec![k(1)]);
        // 2^64 - 1 has no successor: ahead, and a lenient one does not advance.
        let top = u64::MAX;
        assert_eq!(
            seq.check(&[k(4), k(4)], &[top, top], &[false, true], &[(k(4), top)]),
            [NonceTooHigh, Accepted]
        );
        assert_eq!(seq.get(&k(4)), Some((top, top)));
    }

    #[test]
    fn seen_set_keeps_the_newest_and_takes() {
        let mut set = SeenSet::new(2, 3);
        set.add(b"aabbccaa", &[]);
        assert_eq!(set.len(), 3);
        assert_eq!(set.contains(b"aabbccdd"), [true, true, true, false]);
        // A key added again keeps its place: "aa" is still the oldest.
        set.add(b"aadd", &[]);
        assert_eq!(set.contains(b"aabbccdd"), [false, true, true, true]);
        // The mask picks rows; taking reports and removes.
        set.add(b"eeff", &[false, true]);
        assert_eq!(set.contains(b"bbeeff"), [false, false, true]);
        assert_eq!(set.take(b"ccccff"), [true, false, true]);
        assert_eq!(set.len(), 1);
        // Taken keys' entries do not pile up over many rounds.
        for round in 0..1000u16 {
            let key = round.to_be_bytes();
            set.add(&key, &[]);
            assert_eq!(set.take(&key), [true]);
        }
        assert!(set.order.len() < 100, "{} entries", set.order.len());
        assert_eq!(set.contains(b"dd"), [true]);
    }
}
