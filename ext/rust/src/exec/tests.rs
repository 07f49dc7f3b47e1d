//! The executor on hand-built blocks of transfers: outcomes, refusals, and a
//! scheduler-like wave split equal to serial execution (the Python
//! differential test compares against the Python handlers themselves).

use super::*;

fn env(height: u64) -> BlockEnv {
    BlockEnv {
        height,
        timestamp_ms: 0,
        default_suite: true,
    }
}

/// A block built row by row (`OwnedCols` with the helpers below).
struct Block(OwnedCols);

impl std::ops::Deref for Block {
    type Target = OwnedCols;
    fn deref(&self) -> &OwnedCols {
        &self.0
    }
}

impl std::ops::DerefMut for Block {
    fn deref_mut(&mut self) -> &mut OwnedCols {
        &mut self.0
    }
}

fn pk(i: u8) -> Vec<u8> {
    vec![i; 32]
}

impl Block {
    fn new() -> Block {
        Block(OwnedCols {
            sender_len: 32,
            ..OwnedCols::default()
        })
    }

    fn push(
        &mut self,
        sender: u8,
        nonce: u64,
        reads: &[Vec<u8>],
        writes: &[Vec<u8>],
        payload: &[u8],
    ) {
        let c = &mut self.0;
        c.key_first.push(c.key_start.len() as i64);
        for k in reads.iter().chain(writes) {
            c.key_start.push(c.buf.len() as i64);
            c.key_len.push(k.len() as u8);
            c.buf.extend_from_slice(k);
        }
        c.n_read.push(reads.len() as u8);
        c.n_write.push(writes.len() as u8);
        c.sender.extend_from_slice(&pk(sender));
        c.nonce.push(nonce);
        c.expires_at.push(0);
        c.payload_start.push(c.buf.len() as i64);
        c.payload_len.push(payload.len() as u32);
        c.buf.extend_from_slice(payload);
        c.digest.extend_from_slice(&[c.nonce.len() as u8; 32]);
    }

    fn transfer(&mut self, from: u8, nonce: u64, to: u8, amount: u64) {
        let payload = [pk(to), amount.to_le_bytes().to_vec()].concat();
        let mut writes = vec![
            [b"bal/".to_vec(), pk(from)].concat(),
            [b"bal/".to_vec(), pk(to)].concat(),
        ];
        writes.sort();
        self.push(
            from,
            nonce,
            &[[b"acct/".to_vec(), pk(to)].concat()],
            &writes,
            &payload,
        );
    }
}

fn world(accounts: u8, balance: u64) -> State {
    let mut s = State::new();
    for i in 0..accounts {
        s.prefetch(&[b"acct/".as_slice(), &pk(i)].concat(), Some(&[0; 12]));
        s.prefetch(
            &[b"bal/".as_slice(), &pk(i)].concat(),
            Some(&balance.to_le_bytes()),
        );
        s.prefetch(&nonce_key(&pk(i)), None);
    }
    s
}

fn run_all(block: &Block, state: &mut State, waves: &[Vec<u32>], parallel: bool) -> Vec<u16> {
    let rows: Vec<u32> = waves.concat();
    let mut bounds = vec![0u32];
    for w in waves {
        bounds.push(bounds.last().unwrap() + w.len() as u32);
    }
    let kernels = vec![Kernel::Transfer as u8; block.nonce.len()];
    let outs = run(
        &block.cols(),
        state,
        &rows,
        &bounds,
        &kernels,
        &env(5),
        parallel,
    )
    .unwrap();
    let mut codes = vec![u16::MAX; block.nonce.len()];
    for (r, o) in rows.iter().zip(outs) {
        codes[*r as usize] = o.code;
    }
    codes
}

fn balance(state: &State, i: u8) -> u64 {
    u64::from_le_bytes(
        state
            .get(&[b"bal/".as_slice(), &pk(i)].concat())
            .unwrap()
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

#[test]
fn transfers_and_refusals() {
    let mut b = Block::new();
    b.transfer(0, 0, 1, 30); // ok
    b.transfer(0, 0, 1, 1); // nonce reused
    b.transfer(0, 1, 1, 80); // insufficient (20 left)
    b.transfer(0, 2, 0, 1); // self-transfer
    b.transfer(0, 3, 9, 1); // unregistered recipient
    let to_0 = [pk(0), 5u64.to_le_bytes().to_vec()].concat();
    b.push(1, 0, &[], &[], &to_0); // declares nothing: reading acct/ is undeclared
    b.transfer(1, 1, 2, 0); // zero amount
    b.cols().check().unwrap();
    let mut s = world(3, 50);
    for k in [b"acct/".as_slice(), b"bal/"] {
        s.prefetch(&[k, &pk(9)].concat(), None);
    }
    let codes = run_all(&b, &mut s, &[(0..7).collect()], false);
    use codes::*;
    assert_eq!(
        codes,
        [
            OK,
            NONCE_MISMATCH,
            INSUFFICIENT_FUNDS,
            BAD_PAYLOAD,
            NO_SUCH_ACCOUNT,
            UNDECLARED_ACCESS,
            BAD_PAYLOAD
        ]
    );
    assert_eq!((balance(&s, 0), balance(&s, 1)), (20, 80));
    // Nonces: sender 0 consumed 0..=3 (the reused one did not), sender 1 consumed 0 and 1.
    assert_eq!(
        s.get(&nonce_key(&pk(0))).unwrap(),
        Some(&4u64.to_le_bytes()[..])
    );
    assert_eq!(
        s.get(&nonce_key(&pk(1))).unwrap(),
        Some(&2u64.to_le_bytes()[..])
    );
    // First-write order: the nonce, then the sender's and the recipient's balances.
    let first: Vec<&[u8]> = s.writes().iter().take(3).map(|(k, _)| &k[..]).collect();
    assert_eq!(
        first,
        [
            &nonce_key(&pk(0))[..],
            &[b"bal/".as_slice(), &pk(0)].concat()[..],
            &[b"bal/".as_slice(), &pk(1)].concat()[..]
        ]
    );
}

#[test]
fn a_key_not_prefetched_is_broken_not_a_refusal() {
    let mut b = Block::new();
    b.transfer(0, 0, 1, 1);
    let mut s = State::new();
    let err = run(&b.cols(), &mut s, &[0], &[0, 1], &[0], &env(1), false).unwrap_err();
    assert!(err.0.contains("not prefetched"), "{err}");
}

#[test]
fn parallel_waves_equal_serial() {
    // 40 senders, each paying the next one twice: two waves a sender, as a scheduler splits them.
    let n = 40u8;
    let mut b = Block::new();
    for round in 0..2u64 {
        for i in 0..n {
            b.transfer(i, round, (i + 1) % n, 7 + i as u64);
        }
    }
    let serial_waves = vec![(0..2 * n as u32).collect::<Vec<_>>()];
    let mut serial = world(n, 100);
    let serial_codes = run_all(&b, &mut serial, &serial_waves, false);
    // Waves by round (within a round, i pays i+1 while i+1 pays i+2: bal/ conflicts), so split
    // each round by parity, which is conflict-free for an even n.
    let mut waves = vec![];
    for round in 0..2u32 {
        for parity in 0..2u32 {
            waves.push(
                (0..n as u32)
                    .filter(|i| i % 2 == parity)
                    .map(|i| round * n as u32 + i)
                    .collect(),
            );
        }
    }
    let mut par = world(n, 100);
    let par_codes = run_all(&b, &mut par, &waves, true);
    assert_eq!(serial_codes, par_codes);
    for i in 0..n {
        assert_eq!(balance(&serial, i), balance(&par, i));
    }
}

#[test]
fn a_deferred_row_is_not_applied_and_stops_the_run() {
    let mut b = Block::new();
    b.transfer(0, 0, 1, 5);
    b.transfer(2, 0, 1, 5); // row 1: deferred (its payload made to start with 0xff below)
    let at = b.payload_start[1] as usize;
    b.buf[at] = 0xff;
    b.transfer(0, 1, 1, 5);
    let kernels = vec![Kernel::TestDefer as u8; 3];
    // Serially: rows 0 and 1 (deferred) come back; row 2 waits for the caller.
    let mut s = world(3, 50);
    let outs = run(
        &b.cols(),
        &mut s,
        &[0, 1, 2],
        &[0, 3],
        &kernels,
        &env(1),
        false,
    )
    .unwrap();
    assert_eq!(
        outs.iter().map(|o| o.code).collect::<Vec<_>>(),
        [codes::OK, codes::DEFER]
    );
    assert_eq!(
        s.get(&nonce_key(&pk(2))).unwrap(),
        None,
        "the deferred row's nonce is untouched"
    );
    assert_eq!(
        s.get(&nonce_key(&pk(0))).unwrap(),
        Some(&1u64.to_le_bytes()[..])
    );
    // In waves: the deferring wave ([0, 1]) is applied but for row 1, then the run stops.
    let mut s = world(3, 50);
    let outs = run(
        &b.cols(),
        &mut s,
        &[0, 1, 2],
        &[0, 2, 3],
        &kernels,
        &env(1),
        true,
    )
    .unwrap();
    assert_eq!(
        outs.iter().map(|o| o.code).collect::<Vec<_>>(),
        [codes::OK, codes::DEFER]
    );
    assert_eq!(balance(&s, 1), 55);
}

#[test]
fn declared_keys_are_sorted_unique_and_include_nonce_keys() {
    let mut b = Block::new();
    b.transfer(0, 0, 1, 5);
    b.transfer(1, 0, 0, 5);
    let keys = b.cols().declared_keys();
    let mut want: Vec<Vec<u8>> = vec![nonce_key(&pk(0)), nonce_key(&pk(1))];
    for p in [b"acct/".as_slice(), b"bal/"] {
        want.push([p, &pk(0)].concat());
        want.push([p, &pk(1)].concat());
    }
    want.sort();
    assert_eq!(keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>(), want);
}

#[test]
fn receipts_encode_as_the_wire_says() {
    let bare = encode_receipt(&[7; 32], 68, None).unwrap();
    assert_eq!(bare, [vec![7; 32], vec![68, 0, 0]].concat());
    let ev = encode_receipt(&[7; 32], 0, Some(&(b"t".as_slice(), vec![1, 2]))).unwrap();
    assert_eq!(
        ev,
        [
            vec![7; 32],
            vec![0, 0, 1, 1, 2, 0],
            b"t".to_vec(),
            vec![1, 2]
        ]
        .concat()
    );
    assert!(encode_receipt(&[7; 32], 0, Some(&(b"".as_slice(), vec![]))).is_err());
}

#[test]
fn wave_bounds_must_cover_the_rows_from_the_first() {
    // Bounds [1, 2] over rows [0, 1] ran row 1 and paired its outcome with row 0.
    let mut b = Block::new();
    b.transfer(0, 0, 1, 1);
    b.transfer(2, 0, 1, 1);
    for bounds in [&[1u32, 2][..], &[0, 1], &[0], &[], &[0, 1, 3]] {
        let mut s = world(3, 50);
        let err = run(&b.cols(), &mut s, &[0, 1], bounds, &[0, 0], &env(1), false).unwrap_err();
        assert!(err.0.contains("wave bounds"), "{bounds:?}: {err}");
        assert!(s.writes().is_empty(), "{bounds:?}: nothing ran");
    }
}
