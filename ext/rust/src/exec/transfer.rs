//! `accounts.transfer` (op 2), as `tierchain.apps.accounts._transfer` does it:
//! payload = recipient (32 bytes) || amount u64 LE; the recipient must be
//! registered (`acct/<to>`), the sender's balance (`bal/<sender>`) must cover
//! the amount, the recipient's must not pass 2^63 - 1; event `transfer` with
//! sender || recipient || amount LE.

use super::{Fail, TxView, codes};

const AMOUNT_MAX: u64 = (1 << 63) - 1;
pub const TOPIC: &[u8] = b"transfer";

fn key(prefix: &[u8], public_key: &[u8]) -> Vec<u8> {
    [prefix, public_key].concat()
}

pub(super) fn run(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() != 40 {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let (to, amount) = payload.split_at(32);
    let amount = u64::from_le_bytes(amount.try_into().expect("8 bytes"));
    let sender = tx.sender();
    if to == sender || amount == 0 || amount > AMOUNT_MAX {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    if tx.get(&key(b"acct/", to))?.is_none() {
        return Err(Fail::Code(codes::NO_SUCH_ACCOUNT));
    }
    let (from_key, to_key) = (key(b"bal/", sender), key(b"bal/", to));
    let have = tx.get_u64(&from_key)?;
    if have < amount {
        return Err(Fail::Code(codes::INSUFFICIENT_FUNDS));
    }
    let credit = match tx.get_u64(&to_key)?.checked_add(amount) {
        Some(credit) if credit <= AMOUNT_MAX => credit,
        _ => return Err(Fail::Code(codes::BAD_PAYLOAD)),
    };
    tx.put_u64(&from_key, have - amount)?;
    tx.put_u64(&to_key, credit)?;
    let mut data = Vec::with_capacity(sender.len() + 40);
    data.extend_from_slice(sender);
    data.extend_from_slice(to);
    data.extend_from_slice(&amount.to_le_bytes());
    Ok((TOPIC, data))
}
