//! Invoices made in the test itself.

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{Secp256k1, SecretKey, rand};
use lightning_signer::lightning::types::payment::PaymentSecret;
use lightning_signer::lightning_invoice::{Currency, InvoiceBuilder};

/// A regtest invoice for 10 sat from a payee nobody can reach: paying it is approved by the
/// signer (when a device asked), then fails for want of a route.
pub fn unreachable_invoice() -> String {
    let secp = Secp256k1::new();
    let payee = SecretKey::new(&mut rand::thread_rng());
    InvoiceBuilder::new(Currency::Regtest)
        .description("nowhere".into())
        .payment_hash(sha256::Hash::from_byte_array(rand::random()))
        .payment_secret(PaymentSecret([1; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(10_000)
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &payee))
        .expect("a valid invoice")
        .to_string()
}
