//! `NewAddr`: a fresh address of the signer's wallet (P2WPKH; no taproot yet).

use skylight_proto::cln::{self as pb, newaddr_request::NewaddrAddresstype};

use super::Ctx;
use crate::node::NodeError;

/// Answers `NewAddr`.
pub async fn handle(
    ctx: &Ctx<'_>,
    req: pb::NewaddrRequest,
) -> Result<pb::NewaddrResponse, NodeError> {
    match req.addresstype.map(NewaddrAddresstype::try_from) {
        None | Some(Ok(NewaddrAddresstype::Bech32)) | Some(Ok(NewaddrAddresstype::All)) => {}
        Some(Ok(NewaddrAddresstype::P2tr)) => {
            return Err(NodeError::Invalid(
                "p2tr addresses are not offered: the dev chain cannot verify taproot spends; ask for bech32".into(),
            ));
        }
        Some(Err(_)) => return Err(NodeError::Invalid("unknown addresstype".into())),
    }
    let address = ctx.node.new_address().await?;
    Ok(pb::NewaddrResponse {
        bech32: Some(address.to_string()),
        p2tr: None,
    })
}
