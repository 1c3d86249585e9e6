//! Signers attached to the scheduler through `SignerRequestsStream`, per tenant.
//!
//! The scheduler sends requests that come from the scheduler itself (pairing approvals,
//! later) down these streams, and reads the signers' answers. A stream stays open for as
//! long as the signer keeps it; HTTP/2 keepalive pings notice a signer that vanished.

use std::collections::HashMap;
use std::sync::Mutex;

use skylight_proto::scheduler::{SignerRequest, SignerResponse};
use tokio::sync::{mpsc, oneshot};

/// How many requests may wait for one slow signer before it is dropped.
const QUEUE: usize = 64;

/// Each tenant's attached streams: (attachment id, where its requests go).
type Streams = HashMap<[u8; 33], Vec<(u64, mpsc::Sender<SignerRequest>)>>;
/// Requests waiting for an answer: (tenant, request id) → who waits for the first one.
type Waiting = HashMap<([u8; 33], u32), oneshot::Sender<SignerResponse>>;

/// The attached signer streams, and the requests waiting for an answer.
pub struct SignerHub {
    /// Streams one tenant may attach at once.
    max_per_tenant: usize,
    streams: Mutex<Streams>,
    next: std::sync::atomic::AtomicU64,
    next_request: std::sync::atomic::AtomicU32,
    waiting: Mutex<Waiting>,
}

impl SignerHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A hub with nothing attached, taking `max_per_tenant` streams of each tenant.
    pub fn new(max_per_tenant: usize) -> Self {
        SignerHub {
            max_per_tenant,
            streams: Mutex::default(),
            next: Default::default(),
            next_request: Default::default(),
            waiting: Mutex::default(),
        }
    }

    /// Attaches a signer of `tenant`; returns its id and the requests for it, or
    /// RESOURCE_EXHAUSTED if the tenant has as many attached as it may.
    pub fn attach(
        &self,
        tenant: [u8; 33],
    ) -> Result<(u64, mpsc::Receiver<SignerRequest>), crate::error::Error> {
        let mut streams = self.lock();
        let list = streams.entry(tenant).or_default();
        list.retain(|(_, tx)| !tx.is_closed());
        if list.len() >= self.max_per_tenant {
            crate::metrics::refused("signer_streams");
            return Err(crate::error::Error::ResourceExhausted(format!(
                "this node has {} signers attached to the scheduler already, as many as it \
                 may; detach one (or wait for a stale one to time out) and try again",
                list.len()
            )));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        list.push((id, tx));
        Ok((id, rx))
    }

    /// Detaches a signer.
    pub fn detach(&self, tenant: &[u8; 33], id: u64) {
        let mut streams = self.lock();
        if let Some(list) = streams.get_mut(tenant) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                streams.remove(tenant);
            }
        }
    }

    /// How many signer streams are attached, over every tenant.
    pub fn streams(&self) -> usize {
        self.lock()
            .values()
            .flatten()
            .filter(|(_, tx)| !tx.is_closed())
            .count()
    }

    /// How many signers of `tenant` are attached.
    pub fn attached(&self, tenant: &[u8; 33]) -> usize {
        let mut streams = self.lock();
        let Some(list) = streams.get_mut(tenant) else {
            return 0;
        };
        list.retain(|(_, tx)| !tx.is_closed());
        list.len()
    }

    /// Sends `request` to every attached signer of `tenant`; returns how many got it.
    pub fn send(&self, tenant: &[u8; 33], request: SignerRequest) -> usize {
        let mut streams = self.lock();
        let Some(list) = streams.get_mut(tenant) else {
            return 0;
        };
        list.retain(|(_, tx)| tx.try_send(request.clone()).is_ok());
        list.len()
    }

    /// Sends `request` (its id set here) to `tenant`'s signers; the receiver gets the first
    /// answer. `None` when no signer of the tenant is attached.
    pub fn ask(
        &self,
        tenant: &[u8; 33],
        mut request: SignerRequest,
    ) -> Option<(u32, oneshot::Receiver<SignerResponse>)> {
        let id = self
            .next_request
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1);
        request.request_id = id;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((*tenant, id), tx);
        if self.send(tenant, request) == 0 {
            self.forget(tenant, id);
            return None;
        }
        Some((id, rx))
    }

    /// The asker of request `id` stopped waiting.
    pub fn forget(&self, tenant: &[u8; 33], id: u32) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(*tenant, id));
    }

    /// A signer's answer: to whoever asked, if still waiting. Only the tenant's own
    /// signers answer its requests (the stream is the tenant's).
    pub fn answered(&self, tenant: &[u8; 33], response: &SignerResponse) {
        let waiter = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(*tenant, response.request_id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(response.clone());
            }
            None => {
                tracing::debug!(node_id = %hex::encode(tenant), request_id = response.request_id, "a signer answered a request nobody waits for")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_only_the_tenants_signers() {
        let hub = SignerHub::new(8);
        let (a1, mut ra1) = hub.attach([2; 33]).unwrap();
        let (_b, mut rb) = hub.attach([3; 33]).unwrap();
        let (_a2, mut ra2) = hub.attach([2; 33]).unwrap();
        assert_eq!(hub.attached(&[2; 33]), 2);
        let req = SignerRequest {
            request_id: 7,
            request: None,
        };
        assert_eq!(hub.send(&[2; 33], req.clone()), 2);
        assert_eq!(ra1.try_recv().unwrap(), req);
        assert_eq!(ra2.try_recv().unwrap(), req);
        assert!(rb.try_recv().is_err());
        hub.detach(&[2; 33], a1);
        assert_eq!(hub.attached(&[2; 33]), 1);
        drop(ra2);
        assert_eq!(hub.attached(&[2; 33]), 0);
    }

    #[test]
    fn a_tenant_attaches_at_most_its_share_of_streams_and_a_gone_one_frees_its_place() {
        let hub = SignerHub::new(2);
        let (_a, _ra) = hub.attach([2; 33]).unwrap();
        let (_b, rb) = hub.attach([2; 33]).unwrap();
        let e = hub.attach([2; 33]).unwrap_err();
        assert!(
            matches!(&e, crate::error::Error::ResourceExhausted(m) if m.contains("2 signers")),
            "{e:?}"
        );
        // Another tenant is not affected.
        hub.attach([3; 33]).unwrap();
        drop(rb);
        hub.attach([2; 33]).unwrap();
    }
}
