//! `NewAddr`: a fresh address of the signer's wallet (P2WPKH; no taproot yet).

use skylight_proto::cln::{self as pb, newaddr_request::NewaddrAddresstype};

use super::{ApiError, ClnService};

/// Answers the call (the caller's device and signature were checked before it).
pub async fn newaddr(
    api: &ClnService,
    req: pb::NewaddrRequest,
) -> Result<pb::NewaddrResponse, ApiError> {
    match req.addresstype.map(NewaddrAddresstype::try_from) {
        None | Some(Ok(NewaddrAddresstype::Bech32)) | Some(Ok(NewaddrAddresstype::All)) => {}
        Some(Ok(NewaddrAddresstype::P2tr)) => {
            return Err(ApiError::Invalid(
                "p2tr addresses are not offered: the dev chain cannot verify taproot spends; ask for bech32".into(),
            ));
        }
        Some(Err(_)) => return Err(ApiError::Invalid("unknown addresstype".into())),
    }
    let running = api.running("a new address").await?;
    let address = running
        .wallet
        .new_address()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(pb::NewaddrResponse {
        bech32: Some(address.to_string()),
        p2tr: None,
    })
}
