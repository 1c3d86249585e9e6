//! `Debug.ReportSignerRejection`: a signer tells the operator it refused a request.
//! Greenlight's signer sends it with the nobody identity, so any verified caller may,
//! within the budgets of `report_limits`; a report naming a tenant from anyone but its
//! devices is stored as such (`from_tenant: false`).

use std::sync::Arc;

use skylight_proto::scheduler::SignerRejection;
use tonic::Request;

use crate::auth::{self, Caller};
use crate::error::Error;
use crate::proof;
use crate::report_limits::Reporter;
use crate::state::{State, blocking};
use crate::store::records::RejectionRecord;

/// Bounds on what reports may store: anyone with the nobody identity can send them.
const MAX_MSG: usize = 1024;
const MAX_RAW: usize = 8192;
/// How many reports are kept (the newest).
const KEEP: u64 = 10_000;

/// Handles the RPC.
pub async fn handle(state: &Arc<State>, req: Request<SignerRejection>) -> Result<(), Error> {
    let caller = auth::caller(&req)?;
    let addr = req.remote_addr().map(|a| a.ip());
    let req = req.into_inner();
    if !req.node_id.is_empty() {
        proof::parse_node_id(&req.node_id)?;
    }
    let (node_id, tenant_device) = match (&caller, req.node_id.is_empty()) {
        (Caller::Device { node_id, .. }, _) => {
            auth::same_tenant(node_id, &req.node_id)?;
            (hex::encode(node_id), true)
        }
        (_, false) => (hex::encode(&req.node_id), false),
        (_, true) => (String::new(), false),
    };
    let described = caller.describe();
    let who = Reporter {
        caller: &described,
        addr,
        tenant_device,
    };
    state
        .report_limits
        .take(&who, &node_id)
        .map_err(|why| Error::ResourceExhausted(why.into()))?;
    let raw = req.request.map(|r| r.raw).unwrap_or_default();
    let record = RejectionRecord {
        node_id,
        reporter: described.clone(),
        from_tenant: tenant_device,
        msg: truncate(&req.msg, MAX_MSG),
        git_version: truncate(&req.git_version, 256),
        request_raw: hex::encode(&raw[..raw.len().min(MAX_RAW)]),
        received_at: crate::store::now(),
    };
    tracing::warn!(
        node_id = %record.node_id,
        reporter = %record.reporter,
        git_version = %record.git_version,
        msg = %record.msg,
        "signer rejected a request"
    );
    let st = state.clone();
    blocking(move || st.store.add_rejection(&record, KEEP)).await?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
