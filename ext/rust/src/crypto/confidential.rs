//! Confidential amounts: Pedersen commitments, aggregated range proofs,
//! grouped (multi-recipient) twisted-ElGamal ciphertexts with validity
//! proofs, and decryption. Step 1 of issue 17: primitives only.
//!
//! Nothing here implements curve arithmetic or a proof system; every piece
//! comes from a maintained library (docs/privacy.md, "Primitives"):
//!
//! * **Pedersen commitments, ElGamal keys, decrypt handles, decryption**:
//!   `solana-zk-sdk`'s public `encryption` module (Ristretto255 via
//!   `curve25519-dalek` 4). `C = v·G + r·H` with `G` the ristretto255
//!   basepoint and `H = hash_from_bytes::<Sha3_512>(G compressed)`.
//! * **Range proofs**: Bulletproofs+ from `tari_bulletproofs_plus` (Tari's
//!   production implementation, on `curve25519-dalek` 5), aggregated over up
//!   to [`MAX_RANGE_AMOUNTS`] commitments, with *our* (`tari_merlin`)
//!   transcript. Its parameters are given the same `G` (value) and `H`
//!   (blinding) bases (checked by a test), so one commitment serves the range
//!   proof, the balance check and the ciphertext. It is chosen over zkcrypto's
//!   `bulletproofs` 5 for its *batch* verification: one multiscalar
//!   multiplication for many proofs, ~4x the single-proof rate (docs/privacy.md).
//! * **Grouped-ciphertext validity proofs**: the statement "I know `v, r`
//!   with `C = v·G + r·H` and `D_i = r·P_i` for every recipient key `P_i`",
//!   declared with `lox-zkp`'s `define_proof!` (Tor's maintained fork of
//!   dalek's `zkp`), which generates the Schnorr proof, in its *batchable*
//!   form (the prover's commitments rather than the challenge, so many
//!   proofs verify in one multiscalar multiplication); again on our
//!   transcript.
//!
//! `solana-zk-sdk` also has range and validity proofs, but its
//! `range_proof` / `sigma_proofs` modules are private (8.1.0) and the public
//! proof-data types build their own transcript under Solana's domain
//! (`solana-zk-elgamal-proof-program-v1`) from the statement only, so a proof
//! cannot be bound to a TierChain context (a transaction digest).
//!
//! # Transcripts and context binding
//!
//! Every proof's (merlin) transcript starts `Transcript::new(DOMAIN)`, then
//! `purpose` ([`RANGE_PURPOSE`] or [`VALIDITY_PURPOSE`]) and `context` (the
//! caller's bytes, at most [`MAX_CONTEXT_LEN`]); the proof system then adds
//! its own labels and the statement (commitments, bit length and count;
//! ciphertext and keys). A proof checked against another context, purpose
//! or statement fails.
//!
//! # Batches
//!
//! [`range_verify_batch`] groups proofs by amount count, cuts them into
//! chunks across the crate's pool and verifies each chunk as one
//! Bulletproofs+ batch; a failing chunk is bisected (a half that passes is
//! settled) so every proof gets exactly its own verdict.
//! [`validity_verify_batch`] does the same with lox-zkp's `batch_verify`,
//! grouping by handle count (one statement per count).
//!
//! # Conventions
//!
//! Verifiers return `false` for any malformed cryptographic input (lengths,
//! undecodable points, non-canonical scalars, bad proofs) and never panic.
//! Errors ([`Error::Input`]) are for the caller's own mistakes: sizes above
//! the named bounds, unsupported bit lengths, amounts out of range for the
//! prover, non-canonical openings or secret keys handed to a prover.

use std::sync::{LazyLock, OnceLock};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use dalek5::traits::Identity as _;
use lox_zkp::{BatchableProof, define_proof};
use merlin::Transcript;
use rayon::prelude::*;
use solana_zk_sdk::encryption::elgamal::{
    DecryptHandle, ElGamalCiphertext, ElGamalPubkey, ElGamalSecretKey,
};
use solana_zk_sdk::encryption::pedersen::{self, Pedersen, PedersenCommitment, PedersenOpening};
use tari_bulletproofs_plus::commitment_opening::CommitmentOpening;
use tari_bulletproofs_plus::generators::pedersen_gens::{
    ExtensionDegree, PedersenGens as BpPedersenGens,
};
use tari_bulletproofs_plus::range_parameters::RangeParameters;
use tari_bulletproofs_plus::range_proof::{RangeProof, VerifyAction};
use tari_bulletproofs_plus::range_statement::RangeStatement;
use tari_bulletproofs_plus::range_witness::RangeWitness;
use tari_merlin::Transcript as RangeTranscript;

/// Merlin domain label of every TierChain confidential-amount transcript.
pub const DOMAIN: &[u8] = b"tierchain.confidential.v1";
/// Purpose label of range proofs.
pub const RANGE_PURPOSE: &[u8] = b"range-proof";
/// Purpose label of grouped-ciphertext validity proofs.
pub const VALIDITY_PURPOSE: &[u8] = b"grouped-ciphertext-validity";
/// Prefix of the ElGamal key derivation input (`DOMAIN || this || seed`).
pub const ELGAMAL_KEY_LABEL: &[u8] = b"/elgamal-key/";

/// Compressed Ristretto points (commitments, handles, public keys).
pub const POINT_LEN: usize = 32;
/// Canonical scalars (openings, secret keys).
pub const SCALAR_LEN: usize = 32;
/// ElGamal key seeds.
pub const SEED_LEN: usize = 32;
/// Bit lengths a range proof may use (all amounts of one proof share one).
pub const RANGE_BITS: [usize; 4] = [8, 16, 32, 64];
/// Most commitments in one aggregated range proof. Counts that are not a
/// power of two are padded with the identity commitment (`0·G + 0·H`) on both
/// sides.
pub const MAX_RANGE_AMOUNTS: usize = 8;
/// Most recipient keys of one grouped ciphertext (e.g. holder, counterparty,
/// regulator, auditor).
pub const MAX_HANDLES: usize = 4;
/// Longest caller context bound into a proof.
pub const MAX_CONTEXT_LEN: usize = 1024;
/// Most proofs in one batch-verification call.
pub const MAX_BATCH: usize = 16384;
/// Most terms in one commitment or opening sum.
pub const MAX_SUM_TERMS: usize = 4096;
/// Validity proof for one key (what a confidential amount carries): lox-zkp's
/// batchable form, two commitments and two responses; see
/// [`validity_proof_len`] for other key counts.
pub const VALIDITY_PROOF_LEN: usize = validity_proof_len(1);
/// Decryption solves a discrete log: amounts below `2^DECRYPT_MAX_BITS`.
pub const DECRYPT_MAX_BITS: u32 = 32;
/// The order ℓ = 2^252 + 27742317777372353535851937790883648493 of the
/// ristretto255 group, 32 bytes little-endian: scalars (openings, secret keys,
/// [`commitment_lincomb`] coefficients) are canonical when below it, and
/// amounts add modulo it.
pub const GROUP_ORDER: [u8; SCALAR_LEN] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// Why a call could not run. Cryptographic failures are never errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller's input is out of bounds or unusable (Python `ValueError`).
    Input(String),
    /// The thread pool could not start (Python `RuntimeError`).
    Pool(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Input(m) | Error::Pool(m) => f.write_str(m),
        }
    }
}

fn input<T>(message: impl Into<String>) -> Result<T, Error> {
    Err(Error::Input(message.into()))
}

// ----------------------------------------------------------------- helpers

static H_COMPRESSED: LazyLock<CompressedRistretto> = LazyLock::new(|| pedersen::H.compress());

/// The Pedersen generators `(G, H)`, compressed.
pub fn generators() -> ([u8; POINT_LEN], [u8; POINT_LEN]) {
    (
        RISTRETTO_BASEPOINT_COMPRESSED.to_bytes(),
        H_COMPRESSED.to_bytes(),
    )
}

fn decode_scalar(bytes: &[u8]) -> Option<Scalar> {
    let array: [u8; SCALAR_LEN] = bytes.try_into().ok()?;
    Scalar::from_canonical_bytes(array).into_option()
}

fn compressed(bytes: &[u8]) -> Option<CompressedRistretto> {
    CompressedRistretto::from_slice(bytes).ok()
}

fn decode_point(bytes: &[u8]) -> Option<RistrettoPoint> {
    compressed(bytes)?.decompress()
}

fn opening_arg(bytes: &[u8], name: &str) -> Result<Scalar, Error> {
    decode_scalar(bytes).map_or_else(
        || input(format!("{name} must be a canonical 32-byte scalar")),
        Ok,
    )
}

fn check_context(context: &[u8]) -> Result<(), Error> {
    if context.len() > MAX_CONTEXT_LEN {
        return input(format!(
            "context has {} bytes, more than MAX_CONTEXT_LEN = {MAX_CONTEXT_LEN}",
            context.len()
        ));
    }
    Ok(())
}

fn check_batch(n: usize) -> Result<(), Error> {
    if n > MAX_BATCH {
        return input(format!(
            "{n} proofs in one batch, more than MAX_BATCH = {MAX_BATCH}"
        ));
    }
    Ok(())
}

fn transcript(purpose: &'static [u8], context: &[u8]) -> Transcript {
    let mut t = Transcript::new(DOMAIN);
    t.append_message(b"purpose", purpose);
    t.append_message(b"context", context);
    t
}

// --------------------------------------------------------------- Pedersen

/// A fresh random opening (uniform scalar from the OS RNG).
pub fn random_opening() -> [u8; SCALAR_LEN] {
    PedersenOpening::new_rand().to_bytes()
}

/// `amount·G + opening·H`, compressed.
pub fn commit(amount: u64, opening: &[u8]) -> Result<[u8; POINT_LEN], Error> {
    let r = opening_arg(opening, "opening")?;
    Ok(Pedersen::with(amount, &PedersenOpening::new(r)).to_bytes())
}

fn check_terms(n: usize) -> Result<(), Error> {
    if n > MAX_SUM_TERMS {
        return input(format!(
            "{n} terms, more than MAX_SUM_TERMS = {MAX_SUM_TERMS}"
        ));
    }
    Ok(())
}

fn point_sum(adds: &[&[u8]], subs: &[&[u8]]) -> Option<RistrettoPoint> {
    let mut acc = RistrettoPoint::identity();
    for a in adds {
        acc += decode_point(a)?;
    }
    for s in subs {
        acc -= decode_point(s)?;
    }
    Some(acc)
}

/// `Σ adds − Σ subs` of commitments; `None` if any is not a valid point.
pub fn commitment_sum(adds: &[&[u8]], subs: &[&[u8]]) -> Result<Option<[u8; POINT_LEN]>, Error> {
    check_terms(adds.len() + subs.len())?;
    Ok(point_sum(adds, subs).map(|p| PedersenCommitment::new(p).to_bytes()))
}

/// Whether `Σ inputs == Σ outputs` (e.g. a parent and its split pieces, whose
/// openings the prover chose to sum to the parent's). `false` for malformed
/// points.
pub fn commitments_balance(inputs: &[&[u8]], outputs: &[&[u8]]) -> Result<bool, Error> {
    check_terms(inputs.len() + outputs.len())?;
    Ok(point_sum(inputs, outputs).is_some_and(|d| d.is_identity()))
}

/// `Σ adds − Σ subs` of openings, mod the group order ℓ.
pub fn opening_sum(adds: &[&[u8]], subs: &[&[u8]]) -> Result<[u8; SCALAR_LEN], Error> {
    check_terms(adds.len() + subs.len())?;
    let mut acc = Scalar::ZERO;
    for a in adds {
        acc += opening_arg(a, "openings")?;
    }
    for s in subs {
        acc -= opening_arg(s, "openings")?;
    }
    Ok(acc.to_bytes())
}

fn check_lincomb(terms: usize, coefficients: usize) -> Result<(), Error> {
    check_terms(terms.max(coefficients))?;
    if terms != coefficients {
        return input(format!("{terms} terms but {coefficients} coefficients"));
    }
    Ok(())
}

/// `Σ scalars[i]·points[i]` of commitments (or any points), by one
/// multiscalar multiplication: e.g. `C_lo + 2^32·C_hi` of an amount committed
/// as two 32-bit limbs, or `100·ΣR − p·ΣP` (with `ℓ − p` for `−p`). Scalars
/// are canonical 32-byte little-endian (below [`GROUP_ORDER`]). `None` if any
/// point is not a valid compressed point or any scalar is not canonical;
/// [`Error::Input`] for more than [`MAX_SUM_TERMS`] terms or a different
/// number of points and scalars. Variable time: points and scalars are
/// treated as public (commitments and published coefficients).
pub fn commitment_lincomb(
    points: &[&[u8]],
    scalars: &[&[u8]],
) -> Result<Option<[u8; POINT_LEN]>, Error> {
    check_lincomb(points.len(), scalars.len())?;
    let Some(ps) = points
        .iter()
        .map(|p| decode_point(p))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let Some(ks) = scalars
        .iter()
        .map(|k| decode_scalar(k))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let sum = RistrettoPoint::vartime_multiscalar_mul(&ks, &ps);
    Ok(Some(PedersenCommitment::new(sum).to_bytes()))
}

/// `Σ scalars[i]·openings[i]` mod ℓ: the opening of
/// [`commitment_lincomb`] of commitments with these openings and the same
/// scalars. Every input must be a canonical 32-byte scalar ([`Error::Input`]
/// otherwise, as for the bounds of [`commitment_lincomb`]).
pub fn opening_lincomb(openings: &[&[u8]], scalars: &[&[u8]]) -> Result<[u8; SCALAR_LEN], Error> {
    check_lincomb(openings.len(), scalars.len())?;
    let mut acc = Scalar::ZERO;
    for (o, k) in openings.iter().zip(scalars) {
        acc += opening_arg(o, "openings[i]")? * opening_arg(k, "scalars[i]")?;
    }
    Ok(acc.to_bytes())
}

// ----------------------------------------------------------- range proofs

fn check_bits(bits: usize) -> Result<(), Error> {
    if !RANGE_BITS.contains(&bits) {
        return input(format!("bits must be one of {RANGE_BITS:?}, got {bits}"));
    }
    Ok(())
}

/// Bytes of an aggregated range proof over `amounts` commitments of `bits`
/// bits: one byte (the extension degree) and `6 + 2·log2(bits·m)` 32-byte
/// elements, `m` = `amounts` rounded up to a power of two (577 bytes for one
/// 64-bit amount).
pub fn range_proof_len(amounts: usize, bits: usize) -> usize {
    let m = amounts.max(1).next_power_of_two();
    let lg = (bits * m).trailing_zeros() as usize;
    1 + 32 * (6 + 2 * lg)
}

type Point5 = dalek5::ristretto::RistrettoPoint;
type Scalar5 = dalek5::scalar::Scalar;

/// Range parameters per (bit length, padded amount count), built on first
/// use. Statements with the same count share one precomputation, which lets
/// the batch verifier skip comparing their generators.
static RANGE_PARAMS: [OnceLock<RangeParameters<Point5>>; 16] = [const { OnceLock::new() }; 16];

/// The value base is the ristretto255 basepoint `G` and the blinding base
/// solana-zk-sdk's `H`, so Bulletproofs+ commitments are byte for byte the
/// commitments of [`commit`].
fn range_params(bits: usize, padded: usize) -> &'static RangeParameters<Point5> {
    let b = RANGE_BITS.iter().position(|&x| x == bits).unwrap_or(3);
    let m = padded.trailing_zeros() as usize;
    RANGE_PARAMS[b * 4 + m.min(3)].get_or_init(|| {
        let g = dalek5::constants::RISTRETTO_BASEPOINT_POINT;
        let h = dalek5::ristretto::CompressedRistretto(H_COMPRESSED.to_bytes())
            .decompress()
            .expect("H is a valid point");
        let gens = BpPedersenGens {
            h_base: g,
            h_base_compressed: g.compress(),
            g_base_vec: vec![h],
            g_base_compressed_vec: vec![h.compress()],
            extension_degree: ExtensionDegree::DefaultPedersen,
        };
        RangeParameters::init(bits, padded, gens).expect("supported bit length and count")
    })
}

fn range_transcript(context: &[u8], count: usize) -> RangeTranscript {
    let mut t = RangeTranscript::new(DOMAIN);
    t.append_message(b"purpose", RANGE_PURPOSE);
    t.append_message(b"context", context);
    t.append_u64(b"amounts", count as u64);
    t
}

/// Proves every `amounts[i] < 2^bits`, for commitments with `openings[i]`,
/// bound to `context`. Returns the proof and the commitments it is about.
pub fn range_prove(
    amounts: &[u64],
    openings: &[&[u8]],
    bits: usize,
    context: &[u8],
) -> Result<(Vec<u8>, Vec<[u8; POINT_LEN]>), Error> {
    check_bits(bits)?;
    check_context(context)?;
    let m = amounts.len();
    if m == 0 || m > MAX_RANGE_AMOUNTS {
        return input(format!(
            "a range proof covers 1..={MAX_RANGE_AMOUNTS} amounts, got {m}"
        ));
    }
    if openings.len() != m {
        return input(format!("{m} amounts but {} openings", openings.len()));
    }
    if bits < 64
        && let Some(a) = amounts.iter().find(|&&a| a >> bits != 0)
    {
        return input(format!("amount {a} does not fit in {bits} bits"));
    }
    let padded = m.next_power_of_two();
    let params = range_params(bits, padded);
    let mut commitments = Vec::with_capacity(padded);
    let mut witness = Vec::with_capacity(padded);
    for i in 0..padded {
        // Padding: the identity commitment (amount 0, opening 0), on both sides.
        let (v, r) = if i < m {
            (amounts[i], opening_arg(openings[i], "openings[i]")?)
        } else {
            (0, Scalar::ZERO)
        };
        let r = Scalar5::from_bytes_mod_order(r.to_bytes());
        let c = params
            .pc_gens()
            .commit(&Scalar5::from(v), &[r])
            .map_err(|e| Error::Input(format!("range proof: {e}")))?;
        commitments.push(c);
        witness.push(CommitmentOpening::new(v, vec![r]));
    }
    let out: Vec<[u8; POINT_LEN]> = commitments[..m]
        .iter()
        .map(|c| c.compress().to_bytes())
        .collect();
    let fail =
        |e: tari_bulletproofs_plus::errors::ProofError| Error::Input(format!("range proof: {e}"));
    let statement = RangeStatement::init(params.clone(), commitments, vec![None; padded], None)
        .map_err(fail)?;
    let witness = RangeWitness::init(witness).map_err(fail)?;
    let mut t = range_transcript(context, m);
    let proof = RangeProof::prove(&mut t, &statement, &witness).map_err(fail)?;
    Ok((proof.to_bytes(), out))
}

/// The shape checks of a verification (errors), before any cryptography.
fn check_range_shape(commitments: usize, bits: usize, context: &[u8]) -> Result<(), Error> {
    check_bits(bits)?;
    check_context(context)?;
    if commitments > MAX_RANGE_AMOUNTS {
        return input(format!(
            "a range proof covers at most {MAX_RANGE_AMOUNTS} amounts, got {commitments}"
        ));
    }
    Ok(())
}

/// Parsed proofs ready for batch verification, in three parallel columns
/// (the library takes slices of each).
#[derive(Default)]
struct Prepared {
    statements: Vec<RangeStatement<Point5>>,
    proofs: Vec<RangeProof<Point5>>,
    transcripts: Vec<RangeTranscript>,
}

impl Prepared {
    /// Parses and adds an item; `false` (invalid) for wrong lengths,
    /// undecodable commitments or a proof that does not parse.
    fn push(&mut self, proof: &[u8], commitments: &[&[u8]], bits: usize, context: &[u8]) -> bool {
        let m = commitments.len();
        if m == 0 || proof.len() != range_proof_len(m, bits) {
            return false;
        }
        let padded = m.next_power_of_two();
        let mut points = Vec::with_capacity(padded);
        for c in commitments {
            let Ok(c) = <[u8; POINT_LEN]>::try_from(*c) else {
                return false;
            };
            let Some(p) = dalek5::ristretto::CompressedRistretto(c).decompress() else {
                return false;
            };
            points.push(p);
        }
        points.resize(padded, Point5::identity());
        let Ok(proof) = RangeProof::from_bytes(proof) else {
            return false;
        };
        let params = range_params(bits, padded).clone();
        let Ok(statement) = RangeStatement::init(params, points, vec![None; padded], None) else {
            return false;
        };
        self.statements.push(statement);
        self.proofs.push(proof);
        self.transcripts.push(range_transcript(context, m));
        true
    }

    /// Whether every proof in `lo..hi` verifies, as one Bulletproofs+ batch
    /// (one multiscalar multiplication with random weights).
    fn batch_ok(&self, lo: usize, hi: usize) -> bool {
        let mut transcripts = self.transcripts[lo..hi].to_vec();
        RangeProof::verify_batch(
            &mut transcripts,
            &self.statements[lo..hi],
            &self.proofs[lo..hi],
            VerifyAction::VerifyOnly,
        )
        .is_ok()
    }
}

/// Fills `out` (the verdicts of `lo..hi`) given `batch_ok(lo, hi)`, whether
/// every proof of `lo..hi` verifies as one batch (for one proof: its single
/// verdict). A failing batch is split in halves; a half that passes is
/// settled, a failing one is split again, down to [`NARROW_SINGLE_MAX`]
/// proofs, verified one by one. `known_bad` says the batch `lo..hi` already
/// failed.
fn narrow(
    lo: usize,
    hi: usize,
    out: &mut [bool],
    known_bad: bool,
    batch_ok: &dyn Fn(usize, usize) -> bool,
) {
    if lo == hi {
        return;
    }
    if !known_bad && batch_ok(lo, hi) {
        out.fill(true);
        return;
    }
    if hi - lo <= NARROW_SINGLE_MAX {
        for (i, ok) in out.iter_mut().enumerate() {
            *ok = batch_ok(lo + i, lo + i + 1);
        }
        return;
    }
    let mid = lo + (hi - lo) / 2;
    let (left_out, right_out) = out.split_at_mut(mid - lo);
    if batch_ok(lo, mid) {
        left_out.fill(true);
        narrow(mid, hi, right_out, true, batch_ok);
    } else {
        narrow(lo, mid, left_out, true, batch_ok);
        narrow(mid, hi, right_out, false, batch_ok);
    }
}

/// Cuts `sorted` (sorted by `key`) into chunks of at most `chunk` items,
/// each within one key.
fn group_chunks<T, K: PartialEq>(sorted: &[T], chunk: usize, key: impl Fn(&T) -> K) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let mut end = (start + chunk).min(sorted.len());
        if let Some(k) = (start..end).position(|i| key(&sorted[i]) != key(&sorted[start])) {
            end = start + k;
        }
        chunks.push(&sorted[start..end]);
        start = end;
    }
    chunks
}

/// Verdicts of one chunk: unparsable items are `false`, the rest are batch
/// verified and narrowed.
fn range_chunk(items: &[&RangeItem<'_>], bits: usize) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    let mut slots = Vec::with_capacity(items.len());
    let mut prepared = Prepared::default();
    for (i, it) in items.iter().enumerate() {
        if prepared.push(it.proof, &it.commitments, bits, it.context) {
            slots.push(i);
        }
    }
    let mut ok = vec![false; slots.len()];
    narrow(0, slots.len(), &mut ok, false, &|lo, hi| {
        prepared.batch_ok(lo, hi)
    });
    for (slot, v) in slots.into_iter().zip(ok) {
        out[slot] = v;
    }
    out
}

/// Verifies one aggregated range proof over `commitments`, bound to `context`.
pub fn range_verify(
    proof: &[u8],
    commitments: &[&[u8]],
    bits: usize,
    context: &[u8],
) -> Result<bool, Error> {
    check_range_shape(commitments.len(), bits, context)?;
    let mut prepared = Prepared::default();
    Ok(prepared.push(proof, commitments, bits, context) && prepared.batch_ok(0, 1))
}

/// One range proof of a batch: its bytes, its commitments and its context.
pub struct RangeItem<'a> {
    pub proof: &'a [u8],
    pub commitments: Vec<&'a [u8]>,
    pub context: &'a [u8],
}

/// Largest number of range proofs verified as one Bulletproofs+ batch (the
/// library's own cap).
pub const RANGE_CHUNK_MAX: usize = 256;
/// Below this a chunk is not split further across threads.
pub const RANGE_CHUNK_MIN: usize = 16;
/// Failing groups at most this large are verified one proof at a time.
pub const NARROW_SINGLE_MAX: usize = 4;

/// Verifies each proof (element `i` equals [`range_verify`] of item `i`):
/// items are grouped by amount count, cut into chunks across the crate's
/// pool, each chunk verified as one batch and a failing chunk narrowed, so a
/// bad proof never changes a neighbour's verdict.
pub fn range_verify_batch(items: &[RangeItem<'_>], bits: usize) -> Result<Vec<bool>, Error> {
    check_batch(items.len())?;
    for item in items {
        check_range_shape(item.commitments.len(), bits, item.context)?;
    }
    let n = items.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    // Group by padded amount count (shared generator tables per group).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| items[i].commitments.len().max(1).next_power_of_two());
    let sorted: Vec<&RangeItem<'_>> = order.iter().map(|&i| &items[i]).collect();
    let threads = crate::pool::pool()
        .map_err(Error::Pool)?
        .current_num_threads();
    let chunk = n
        .div_ceil(threads.max(1))
        .clamp(RANGE_CHUNK_MIN, RANGE_CHUNK_MAX);
    // Keep a chunk within one group.
    let chunks = group_chunks(&sorted, chunk, |it| {
        it.commitments.len().max(1).next_power_of_two()
    });
    let verdicts: Vec<Vec<bool>> = if chunks.len() == 1 {
        vec![range_chunk(chunks[0], bits)]
    } else {
        crate::pool::install(|| chunks.par_iter().map(|c| range_chunk(c, bits)).collect())
            .map_err(Error::Pool)?
    };
    let mut out = vec![false; n];
    for (&slot, v) in order.iter().zip(verdicts.into_iter().flatten()) {
        out[slot] = v;
    }
    Ok(out)
}

// ---------------------------------------------------------------- ElGamal

/// The deterministic ElGamal keypair `(secret, public)` of a 32-byte seed:
/// `secret` from `solana-zk-sdk`'s HKDF-SHA512 derivation of
/// `DOMAIN || ELGAMAL_KEY_LABEL || seed`, `public = secret⁻¹·H`.
pub fn elgamal_keypair(seed: &[u8]) -> Result<([u8; SCALAR_LEN], [u8; POINT_LEN]), Error> {
    if seed.len() != SEED_LEN {
        return input(format!("seed must be {SEED_LEN} bytes, got {}", seed.len()));
    }
    let ikm = [DOMAIN, ELGAMAL_KEY_LABEL, seed].concat();
    let secret = ElGamalSecretKey::from_seed(&ikm)
        .map_err(|e| Error::Input(format!("ElGamal key derivation: {e}")))?;
    let public = ElGamalPubkey::new(&secret);
    Ok((*secret.as_bytes(), public.to_bytes()))
}

fn decode_pubkey(bytes: &[u8]) -> Option<ElGamalPubkey> {
    let key = ElGamalPubkey::try_from(bytes).ok()?;
    // The identity "key" would make a handle anyone can "decrypt".
    (!key.get_point().is_identity()).then_some(key)
}

fn check_handles(n: usize) -> Result<(), Error> {
    if n == 0 || n > MAX_HANDLES {
        return input(format!(
            "1..={MAX_HANDLES} public keys per ciphertext, got {n}"
        ));
    }
    Ok(())
}

/// A grouped ciphertext of `amount` under `pubkeys`: the Pedersen commitment
/// (shared, so range proofs and balances apply to it) and one decrypt handle
/// `opening·P_i` per key.
pub fn grouped_encrypt(
    amount: u64,
    opening: &[u8],
    pubkeys: &[&[u8]],
) -> Result<([u8; POINT_LEN], Vec<[u8; POINT_LEN]>), Error> {
    check_handles(pubkeys.len())?;
    let r = PedersenOpening::new(opening_arg(opening, "opening")?);
    let mut handles = Vec::with_capacity(pubkeys.len());
    for key in pubkeys {
        let Some(key) = decode_pubkey(key) else {
            return input("pubkeys[i] must be valid, non-identity Ristretto points");
        };
        handles.push(DecryptHandle::new(&key, &r).to_bytes());
    }
    Ok((Pedersen::with(amount, &r).to_bytes(), handles))
}

/// The amount in `(commitment, handle)` for `secret`, if it is below
/// `2^DECRYPT_MAX_BITS` (solana-zk-sdk's baby-step giant-step); `None` for
/// larger amounts, the wrong key (almost surely) or malformed points.
pub fn elgamal_decrypt(
    secret: &[u8],
    commitment: &[u8],
    handle: &[u8],
) -> Result<Option<u64>, Error> {
    let secret = ElGamalSecretKey::try_from(secret)
        .map_err(|_| Error::Input("secret must be a canonical 32-byte scalar".into()))?;
    let (Some(commitment), Some(handle)) = (
        PedersenCommitment::from_bytes(commitment),
        DecryptHandle::from_bytes(handle),
    ) else {
        return Ok(None);
    };
    Ok(secret.decrypt_u32(&ElGamalCiphertext { commitment, handle }))
}

/// Whether `(commitment, handle)` decrypts to `amount` under `secret`
/// (`C − s·D == amount·G`): constant cost, any `u64` amount.
pub fn elgamal_decrypts_to(
    secret: &[u8],
    commitment: &[u8],
    handle: &[u8],
    amount: u64,
) -> Result<bool, Error> {
    let s = opening_arg(secret, "secret")?;
    let (Some(c), Some(d)) = (decode_point(commitment), decode_point(handle)) else {
        return Ok(false);
    };
    Ok(c - s * d == Scalar::from(amount) * pedersen::G)
}

// ------------------------------------------------ grouped validity proofs

// `define_proof!` calls its helper macro by bare name from inside the module
// it generates; a textually scoped forwarder makes it visible there without a
// crate-level `#[macro_use]`.
macro_rules! __compute_formula_constraint {
    ($($t:tt)*) => { lox_zkp::__compute_formula_constraint!($($t)*) };
}

/// Defines the validity statement for one number of handles (the
/// `define_proof!` DSL has fixed arity) and its prove / verify /
/// batch-verify adapters (lox-zkp's batchable proof form).
macro_rules! validity_statement {
    ($module:ident, $prove:ident, $verify:ident, $batch:ident, $label:literal, $(($d:ident, $p:ident, $i:literal)),+) => {
        define_proof! {
            $module, $label, (v, r), (C, $($d, $p),+), (G, H) :
            C = (v * G + r * H), $($d = (r * $p)),+
        }

        fn $prove(
            t: &mut Transcript,
            v: &Scalar,
            r: &Scalar,
            c: &RistrettoPoint,
            d: &[RistrettoPoint],
            p: &[RistrettoPoint],
        ) -> BatchableProof {
            let h = *pedersen::H;
            $module::prove_batchable(
                t,
                $module::ProveAssignments { v, r, C: c, $($d: &d[$i], $p: &p[$i],)+ G: &pedersen::G, H: &h },
            )
            .0
        }

        /// The caller has checked that every public point decompresses (the
        /// library unwraps it).
        fn $verify(proof: &BatchableProof, t: &mut Transcript, s: &ValidityStatement) -> bool {
            $module::verify_batchable(
                proof,
                t,
                $module::VerifyAssignments {
                    C: &s.c,
                    $($d: &s.d[$i], $p: &s.p[$i],)+
                    G: &RISTRETTO_BASEPOINT_COMPRESSED,
                    H: &H_COMPRESSED,
                },
            )
            .is_ok()
        }

        fn $batch(
            proofs: &[BatchableProof],
            transcripts: Vec<&mut Transcript>,
            statements: &[ValidityStatement],
        ) -> bool {
            $module::batch_verify(
                proofs,
                transcripts,
                $module::BatchVerifyAssignments {
                    C: statements.iter().map(|s| s.c).collect(),
                    $(
                        $d: statements.iter().map(|s| s.d[$i]).collect(),
                        $p: statements.iter().map(|s| s.p[$i]).collect(),
                    )+
                    G: RISTRETTO_BASEPOINT_COMPRESSED,
                    H: *H_COMPRESSED,
                },
            )
            .is_ok()
        }
    };
}

validity_statement!(
    validity_1,
    prove_1,
    verify_1,
    batch_1,
    "grouped-validity-1",
    (D1, P1, 0)
);
validity_statement!(
    validity_2,
    prove_2,
    verify_2,
    batch_2,
    "grouped-validity-2",
    (D1, P1, 0),
    (D2, P2, 1)
);
validity_statement!(
    validity_3,
    prove_3,
    verify_3,
    batch_3,
    "grouped-validity-3",
    (D1, P1, 0),
    (D2, P2, 1),
    (D3, P3, 2)
);
validity_statement!(
    validity_4,
    prove_4,
    verify_4,
    batch_4,
    "grouped-validity-4",
    (D1, P1, 0),
    (D2, P2, 1),
    (D3, P3, 2),
    (D4, P4, 3)
);

fn validity_transcript(context: &[u8], handles: usize) -> Transcript {
    let mut t = transcript(VALIDITY_PURPOSE, context);
    t.append_u64(b"handles", handles as u64);
    t
}

/// Bytes of a validity proof for `handles` keys (lox-zkp's batchable form):
/// the prover's `1 + handles` commitments, one per equation, then the two
/// responses (`v`, `r`). [`VALIDITY_PROOF_LEN`] for one key.
pub const fn validity_proof_len(handles: usize) -> usize {
    (1 + handles) * POINT_LEN + 2 * SCALAR_LEN
}

/// Proves that the grouped ciphertext [`grouped_encrypt`] makes from the
/// same arguments is well formed (every handle opens the same commitment for
/// its key), bound to `context`. [`validity_proof_len`]`(pubkeys.len())`
/// bytes.
pub fn validity_prove(
    amount: u64,
    opening: &[u8],
    pubkeys: &[&[u8]],
    context: &[u8],
) -> Result<Vec<u8>, Error> {
    check_context(context)?;
    check_handles(pubkeys.len())?;
    let r = opening_arg(opening, "opening")?;
    let v = Scalar::from(amount);
    let mut p = Vec::with_capacity(pubkeys.len());
    for key in pubkeys {
        let Some(key) = decode_pubkey(key) else {
            return input("pubkeys[i] must be valid, non-identity Ristretto points");
        };
        p.push(*key.get_point());
    }
    let c = pedersen::G * v + *pedersen::H * r;
    let d: Vec<RistrettoPoint> = p.iter().map(|pk| pk * r).collect();
    let mut t = validity_transcript(context, p.len());
    let proof = match p.len() {
        1 => prove_1(&mut t, &v, &r, &c, &d, &p),
        2 => prove_2(&mut t, &v, &r, &c, &d, &p),
        3 => prove_3(&mut t, &v, &r, &c, &d, &p),
        _ => prove_4(&mut t, &v, &r, &c, &d, &p),
    };
    let len = validity_proof_len(p.len());
    let mut out = Vec::with_capacity(len);
    for commitment in &proof.commitments {
        out.extend_from_slice(commitment.as_bytes());
    }
    for response in &proof.responses {
        out.extend_from_slice(response.as_bytes());
    }
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

fn check_validity_shape(handles: usize, pubkeys: usize, context: &[u8]) -> Result<(), Error> {
    check_context(context)?;
    if handles > MAX_HANDLES || pubkeys > MAX_HANDLES {
        return input(format!(
            "at most {MAX_HANDLES} handles and keys per ciphertext, got {handles} and {pubkeys}"
        ));
    }
    Ok(())
}

/// The public points of one validity statement, still compressed.
struct ValidityStatement {
    c: CompressedRistretto,
    d: Vec<CompressedRistretto>,
    p: Vec<CompressedRistretto>,
}

/// A validity proof parsed for verification.
struct ParsedValidity {
    proof: BatchableProof,
    statement: ValidityStatement,
    transcript: Transcript,
}

impl ParsedValidity {
    /// `None` (invalid) for a wrong number of handles, wrong lengths,
    /// non-canonical responses or an identity key. Points are not
    /// decompressed here: a batch containing an undecodable one fails and
    /// is narrowed down to [`Self::verify_one`], which checks them.
    fn parse(
        proof: &[u8],
        commitment: &[u8],
        handles: &[&[u8]],
        pubkeys: &[&[u8]],
        context: &[u8],
    ) -> Option<Self> {
        let k = pubkeys.len();
        if k == 0 || k > MAX_HANDLES || handles.len() != k || proof.len() != validity_proof_len(k) {
            return None;
        }
        let c = compressed(commitment)?;
        let d = handles
            .iter()
            .map(|h| compressed(h))
            .collect::<Option<Vec<_>>>()?;
        let p = pubkeys
            .iter()
            .map(|pk| compressed(pk))
            .collect::<Option<Vec<_>>>()?;
        // The identity "key" would make a handle anyone can "decrypt".
        if p.iter().any(|pk| pk.is_identity()) {
            return None;
        }
        let (commitments, responses) = proof.split_at((1 + k) * POINT_LEN);
        let commitments = commitments
            .chunks_exact(POINT_LEN)
            .map(compressed)
            .collect::<Option<Vec<_>>>()?;
        let responses = responses
            .chunks_exact(SCALAR_LEN)
            .map(decode_scalar)
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            proof: BatchableProof {
                commitments,
                responses,
            },
            statement: ValidityStatement { c, d, p },
            transcript: validity_transcript(context, k),
        })
    }

    /// Whether the batch verifier takes this statement: it refuses identity
    /// instance points, which a single verification accepts (a commitment
    /// and handles with opening 0), so such items are verified alone.
    fn batchable(&self) -> bool {
        !self.statement.c.is_identity() && !self.statement.d.iter().any(|d| d.is_identity())
    }

    /// The single verification (lox-zkp's `verify_batchable`): every public
    /// point must decompress first (its verifier unwraps that).
    fn verify_one(&self) -> bool {
        let s = &self.statement;
        let decodes = |c: &CompressedRistretto| c.decompress().is_some();
        if !decodes(&s.c) || !s.d.iter().all(decodes) || !s.p.iter().all(decodes) {
            return false;
        }
        let mut t = self.transcript.clone();
        match s.p.len() {
            1 => verify_1(&self.proof, &mut t, s),
            2 => verify_2(&self.proof, &mut t, s),
            3 => verify_3(&self.proof, &mut t, s),
            _ => verify_4(&self.proof, &mut t, s),
        }
    }
}

fn validity_ok(
    proof: &[u8],
    commitment: &[u8],
    handles: &[&[u8]],
    pubkeys: &[&[u8]],
    context: &[u8],
) -> bool {
    ParsedValidity::parse(proof, commitment, handles, pubkeys, context)
        .is_some_and(|parsed| parsed.verify_one())
}

/// Verifies a validity proof of the grouped ciphertext `(commitment,
/// handles)` under `pubkeys` (same order), bound to `context`, without
/// decrypting.
pub fn validity_verify(
    proof: &[u8],
    commitment: &[u8],
    handles: &[&[u8]],
    pubkeys: &[&[u8]],
    context: &[u8],
) -> Result<bool, Error> {
    check_validity_shape(handles.len(), pubkeys.len(), context)?;
    Ok(validity_ok(proof, commitment, handles, pubkeys, context))
}

/// One validity proof of a batch.
pub struct ValidityItem<'a> {
    pub proof: &'a [u8],
    pub commitment: &'a [u8],
    pub handles: Vec<&'a [u8]>,
    pub pubkeys: Vec<&'a [u8]>,
    pub context: &'a [u8],
}

/// Largest number of validity proofs verified as one lox-zkp batch.
pub const VALIDITY_CHUNK_MAX: usize = 256;
/// Below this a chunk of validity proofs is not split further across threads.
pub const VALIDITY_CHUNK_MIN: usize = 16;

/// Parsed proofs of one handle count, in the parallel columns lox-zkp's
/// `batch_verify` takes.
struct ValidityBatch<'p> {
    k: usize,
    proofs: Vec<BatchableProof>,
    statements: Vec<ValidityStatement>,
    transcripts: Vec<Transcript>,
    singles: Vec<&'p ParsedValidity>,
}

impl ValidityBatch<'_> {
    /// Whether every proof in `lo..hi` verifies, as one lox-zkp batch (one
    /// multiscalar multiplication with random weights); one proof alone is
    /// verified singly.
    fn batch_ok(&self, lo: usize, hi: usize) -> bool {
        if hi - lo == 1 {
            return self.singles[lo].verify_one();
        }
        let mut transcripts = self.transcripts[lo..hi].to_vec();
        let ts: Vec<&mut Transcript> = transcripts.iter_mut().collect();
        let (proofs, statements) = (&self.proofs[lo..hi], &self.statements[lo..hi]);
        match self.k {
            1 => batch_1(proofs, ts, statements),
            2 => batch_2(proofs, ts, statements),
            3 => batch_3(proofs, ts, statements),
            _ => batch_4(proofs, ts, statements),
        }
    }
}

/// Verdicts of one chunk (items of one handle count): unparsable items are
/// `false`, statements the batch verifier refuses are verified singly, the
/// rest batch verified and narrowed.
fn validity_chunk(items: &[&ValidityItem<'_>]) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    let parsed: Vec<Option<ParsedValidity>> = items
        .iter()
        .map(|it| {
            ParsedValidity::parse(
                it.proof,
                it.commitment,
                &it.handles,
                &it.pubkeys,
                it.context,
            )
        })
        .collect();
    let mut batch = ValidityBatch {
        k: items.first().map_or(1, |it| it.pubkeys.len()),
        proofs: Vec::with_capacity(items.len()),
        statements: Vec::with_capacity(items.len()),
        transcripts: Vec::with_capacity(items.len()),
        singles: Vec::with_capacity(items.len()),
    };
    let mut slots = Vec::with_capacity(items.len());
    for (i, p) in parsed.iter().enumerate() {
        let Some(p) = p else { continue };
        if !p.batchable() {
            out[i] = p.verify_one();
            continue;
        }
        slots.push(i);
        batch.proofs.push(p.proof.clone());
        batch.statements.push(ValidityStatement {
            c: p.statement.c,
            d: p.statement.d.clone(),
            p: p.statement.p.clone(),
        });
        batch.transcripts.push(p.transcript.clone());
        batch.singles.push(p);
    }
    let mut ok = vec![false; slots.len()];
    narrow(0, slots.len(), &mut ok, false, &|lo, hi| {
        batch.batch_ok(lo, hi)
    });
    for (slot, v) in slots.into_iter().zip(ok) {
        out[slot] = v;
    }
    out
}

/// Verifies each validity proof (element `i` equals [`validity_verify`] of
/// item `i`): items are grouped by handle count, cut into chunks across the
/// crate's pool, each chunk verified as one lox-zkp batch and a failing chunk
/// narrowed, so a bad proof never changes a neighbour's verdict.
pub fn validity_verify_batch(items: &[ValidityItem<'_>]) -> Result<Vec<bool>, Error> {
    check_batch(items.len())?;
    for it in items {
        check_validity_shape(it.handles.len(), it.pubkeys.len(), it.context)?;
    }
    let n = items.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let key = |it: &ValidityItem<'_>| it.pubkeys.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| key(&items[i]));
    let sorted: Vec<&ValidityItem<'_>> = order.iter().map(|&i| &items[i]).collect();
    let threads = crate::pool::pool()
        .map_err(Error::Pool)?
        .current_num_threads();
    let chunk = n
        .div_ceil(threads.max(1))
        .clamp(VALIDITY_CHUNK_MIN, VALIDITY_CHUNK_MAX);
    let chunks = group_chunks(&sorted, chunk, |it| key(it));
    let verdicts: Vec<Vec<bool>> = if chunks.len() == 1 {
        vec![validity_chunk(chunks[0])]
    } else {
        crate::pool::install(|| chunks.par_iter().map(|c| validity_chunk(c)).collect())
            .map_err(Error::Pool)?
    };
    let mut out = vec![false; n];
    for (&slot, v) in order.iter().zip(verdicts.into_iter().flatten()) {
        out[slot] = v;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
