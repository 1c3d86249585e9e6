//! `RespondHsmRequest`: a signer's answer. Its state changes are stored durably before the
//! answer reaches the node; an answer whose state cannot be stored, or conflicts with the
//! node's, is refused and the request stays open.

use skylight_proto::greenlight::{Empty, HsmResponse};

use super::Ctx;
use crate::signer_link::service::LinkError;

/// Answers `RespondHsmRequest`.
pub fn handle(ctx: &Ctx<'_>, req: HsmResponse) -> Result<Empty, LinkError> {
    ctx.link.respond(&ctx.device, req)?;
    Ok(Empty {})
}
