//! `signer-cli webhook …`: the node's outgoing webhooks at the scheduler (Greenlight's four
//! webhook calls). Answers are printed as JSON; a secret is shown once, when it is made.

use anyhow::Result;
use serde_json::json;
use skylight_client::device_dir::DataDir;
use skylight_proto::scheduler::scheduler_client::SchedulerClient;
use skylight_proto::scheduler::{
    AddOutgoingWebhookRequest, DeleteOutgoingWebhooksRequest, ListOutgoingWebhooksRequest,
    RotateOutgoingWebhookSecretRequest,
};
use tonic::transport::Channel;

/// What to do with webhooks.
#[derive(clap::Subcommand)]
pub enum WebhookCall {
    /// Add a webhook; prints its id and its secret (shown only now: keep it).
    Add {
        /// Where events are posted (https://…).
        uri: String,
    },
    /// List the node's webhooks (without secrets).
    List,
    /// Give a webhook a new secret; prints it. The old one signs nothing more.
    Rotate {
        /// The webhook's id.
        id: i64,
    },
    /// Delete webhooks.
    Delete {
        /// Their ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

fn refused(rpc: &str) -> impl FnOnce(tonic::Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("the scheduler refused {rpc}: {}", s.message())
}

/// Makes the call and prints its answer.
pub async fn call(dir: &DataDir, call: WebhookCall) -> Result<()> {
    let (uri, device, settings) = crate::device_context(dir)?;
    let node_id = hex::decode(&settings.node_id)?;
    let mut c: SchedulerClient<Channel> =
        SchedulerClient::new(skylight_client::tls::channel(&uri, &device).await?);
    let out = match call {
        WebhookCall::Add { uri } => {
            let r = c
                .add_outgoing_webhook(AddOutgoingWebhookRequest { node_id, uri })
                .await
                .map_err(refused("AddOutgoingWebhook"))?
                .into_inner();
            json!({"id": r.id, "secret": r.secret})
        }
        WebhookCall::List => {
            let r = c
                .list_outgoing_webhooks(ListOutgoingWebhooksRequest { node_id })
                .await
                .map_err(refused("ListOutgoingWebhooks"))?
                .into_inner();
            let hooks: Vec<_> = r
                .outgoing_webhooks
                .into_iter()
                .map(|w| json!({"id": w.id, "uri": w.uri}))
                .collect();
            json!({"webhooks": hooks})
        }
        WebhookCall::Rotate { id } => {
            let r = c
                .rotate_outgoing_webhook_secret(RotateOutgoingWebhookSecretRequest {
                    node_id,
                    webhook_id: id,
                })
                .await
                .map_err(refused("RotateOutgoingWebhookSecret"))?
                .into_inner();
            json!({"id": id, "secret": r.secret})
        }
        WebhookCall::Delete { ids } => {
            c.delete_webhooks(DeleteOutgoingWebhooksRequest {
                node_id,
                ids: ids.clone(),
            })
            .await
            .map_err(refused("DeleteWebhooks"))?;
            json!({"deleted": ids})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
