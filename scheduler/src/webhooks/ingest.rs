//! `skylight.outbox.Events` on the scheduler's events socket: node-hosts hand over the
//! events they raised, and get their answer once the events are durable here.
//!
//! The tenant is whoever's node-host is calling: the kernel tells the socket's peer pid,
//! and only a node-host this scheduler started and supervises has a tenant by pid. An event
//! that does not make a valid body is logged and dropped rather than refused, so that one
//! bad event cannot keep a node-host's outbox from draining.

use std::sync::Arc;

use skylight_proto::outbox::{self as pb, events_server};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use super::payload;
use crate::error::Error;
use crate::state::{State, blocking};
use crate::store::webhooks::NewEvent;

/// The most events one call may hand over.
pub const MAX_EVENTS_PER_CALL: usize = 1024;

/// The events service.
pub struct EventsService(pub Arc<State>);

impl EventsService {
    /// The tenant whose node-host is calling, from the socket's peer credentials.
    fn caller<T>(&self, req: &Request<T>) -> Result<[u8; 33], Error> {
        let pid = req
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|i| i.peer_cred)
            .and_then(|c| c.pid())
            .ok_or_else(|| Error::PermissionDenied("the caller's process is unknown".into()))?;
        self.0.nodes.tenant_of_pid(pid as u32).ok_or_else(|| {
            Error::PermissionDenied(format!(
                "process {pid} is not a node-host this scheduler started"
            ))
        })
    }
}

#[tonic::async_trait]
impl events_server::Events for EventsService {
    async fn store(
        &self,
        req: Request<pb::StoreEventsRequest>,
    ) -> Result<Response<pb::StoreEventsResponse>, Status> {
        let node_id = self.caller(&req)?;
        let events = req.into_inner().events;
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_EVENTS_PER_CALL} events in one call"
            ))
            .into());
        }
        let node_hex = hex::encode(node_id);
        let new: Vec<NewEvent> = events
            .iter()
            .filter_map(|e| match payload::body(&node_id, e) {
                Ok(body) => Some(NewEvent {
                    event_id: e.event_id.clone(),
                    event_type: e.event_type.clone(),
                    body,
                }),
                Err(why) => {
                    tracing::warn!(node_id = %node_hex, event_id = %e.event_id, %why, "dropped an event a node-host raised");
                    None
                }
            })
            .collect();
        let store = self.0.store.clone();
        let now = super::dispatch::now_ms();
        let (stored, webhooks) = blocking(move || store.store_events(&node_id, &new, now)).await?;
        for w in webhooks {
            self.0.webhooks.poke(w);
        }
        if stored > 0 {
            tracing::debug!(node_id = %node_hex, stored, "events stored");
        }
        Ok(Response::new(pb::StoreEventsResponse { stored }))
    }

    async fn report_usage(
        &self,
        req: Request<pb::UsageReport>,
    ) -> Result<Response<pb::UsageReportResponse>, Status> {
        // Only a node-host this scheduler started counts towards its metrics.
        self.caller(&req)?;
        crate::metrics::usage(&req.into_inner());
        Ok(Response::new(pb::UsageReportResponse {}))
    }
}
