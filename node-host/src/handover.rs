//! Hands the outbox's events to the scheduler, over its events socket, and forgets them
//! once it answers that it stored them. Whatever cannot be handed over now (the scheduler
//! restarting, or this node-host started without it) stays in the outbox and goes with the
//! next try, or the next time the node runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skylight_proto::outbox::{self as pb, events_client::EventsClient};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::store::outbox::{Outbox, OutboxEvent};

/// Events handed over in one call at most.
const BATCH: usize = 256;
/// The longest wait between tries while the scheduler does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one hand-over may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping node-host tries to hand over what it raised last.
const LAST_TRY: Duration = Duration::from_secs(2);

async fn connect(socket: &Path) -> Result<EventsClient<Channel>, tonic::transport::Error> {
    // A scheduler that takes the call and never answers must not hold the outbox (or a
    // stopping node-host) for ever.
    let channel = skylight_client::local::channel(socket, Some(CALL_TIMEOUT)).await?;
    Ok(EventsClient::new(channel))
}

fn wire(e: &OutboxEvent) -> pb::OutboxEvent {
    pb::OutboxEvent {
        seq: e.seq,
        event_id: e.event_id.clone(),
        event_type: e.event_type.clone(),
        timestamp: e.timestamp,
        fields_json: e.fields.to_string(),
    }
}

/// One try: hands over up to [`BATCH`] events; how many went (0: the outbox was empty).
async fn hand_over(
    outbox: &Arc<Outbox>,
    socket: &std::path::Path,
    client: &mut Option<EventsClient<Channel>>,
) -> anyhow::Result<usize> {
    let o = outbox.clone();
    let batch = tokio::task::spawn_blocking(move || o.pending(BATCH)).await??;
    let Some(last) = batch.last().map(|e| e.seq) else {
        return Ok(0);
    };
    if client.is_none() {
        *client = Some(connect(socket).await?);
    }
    let c = client.as_mut().expect("connected above");
    let request = pb::StoreEventsRequest {
        events: batch.iter().map(wire).collect(),
    };
    if let Err(status) = c.store(request).await {
        *client = None;
        return Err(status.into());
    }
    let o = outbox.clone();
    tokio::task::spawn_blocking(move || o.stored(last)).await??;
    Ok(batch.len())
}

/// Hands events over as they are raised, until `stop`; then tries once more, briefly.
pub async fn run(outbox: Arc<Outbox>, socket: PathBuf, stop: CancellationToken) {
    let mut raised = outbox.watch();
    let mut client = None;
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    loop {
        let tried = tokio::select! {
            r = hand_over(&outbox, &socket, &mut client) => r,
            () = stop.cancelled() => break,
        };
        match tried {
            Ok(0) => {
                failing = false;
                tokio::select! {
                    _ = raised.changed() => continue,
                    () = stop.cancelled() => break,
                }
            }
            Ok(n) => {
                if failing {
                    tracing::info!("the scheduler takes events again");
                }
                failing = false;
                backoff = Duration::from_millis(100);
                tracing::debug!(events = n, "events handed to the scheduler");
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %format!("{e:#}"), socket = %socket.display(), "cannot hand events to the scheduler; they stay in the outbox and go later");
                }
                failing = true;
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let last = async {
        while let Ok(n) = hand_over(&outbox, &socket, &mut client).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LAST_TRY, last).await;
}
