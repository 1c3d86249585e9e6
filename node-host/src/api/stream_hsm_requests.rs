//! `StreamHsmRequests`: a signer of this tenant attaches and receives every signing
//! request, the backlog first, each with what it lacks of the signer's state.

use skylight_proto::greenlight::Empty;

use super::Ctx;
use crate::signer_link::service::RequestStream;

/// Answers `StreamHsmRequests`.
pub fn handle(ctx: &Ctx<'_>, _req: Empty) -> RequestStream {
    ctx.link.attach(ctx.device.clone())
}
