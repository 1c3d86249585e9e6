//! `scheduler tenant show` and `scheduler node stop`: one tenant as the operator sees it,
//! and stopping its node-host.

use std::path::PathBuf;

use anyhow::{Context, Result};
use skylight_proto::admin as pb;

use super::{Admin, admin_handle, node_id_arg};

/// "12 s ago", "3 h ago" for a unix time `at`.
fn ago(at: u64) -> String {
    let secs = skylight_scheduler::store::now().saturating_sub(at);
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        7200..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// Prints what is known of the tenant `node_id`.
pub async fn show(data_dir: PathBuf, node_id: String) -> Result<()> {
    let d = match admin_handle(data_dir).await? {
        Admin::Remote(mut c) => c
            .show_tenant(pb::TenantDevicesRequest { node_id })
            .await
            .context("the scheduler refused")?
            .into_inner(),
        Admin::Local(store) => {
            skylight_scheduler::admin::tenant_detail(&store, node_id_arg(&node_id)?).await?
        }
    };
    let t = d.tenant.unwrap_or_default();
    println!("node id       {}", t.node_id);
    println!("state         {}", t.state);
    println!("network       {}", t.network);
    println!("signer        {}", t.signer_version);
    println!(
        "registered    {} ({})",
        t.registered_at,
        ago(t.registered_at)
    );
    if d.running {
        println!(
            "node-host     running: pid {}, {}, started {}",
            d.pid,
            d.grpc_uri,
            ago(d.started_at)
        );
    } else {
        println!("node-host     not running");
    }
    if d.last_scheduled_at > 0 {
        println!("last schedule {}", ago(d.last_scheduled_at));
    } else {
        println!("last schedule none since the scheduler started");
    }
    println!("devices       {}", d.devices.len());
    for dev in d.devices {
        let revoked = if dev.revoked_at == 0 {
            String::new()
        } else {
            format!(", revoked {}", ago(dev.revoked_at))
        };
        println!("  {} (issued {}{revoked})", dev.name, ago(dev.issued_at));
    }
    Ok(())
}

/// Stops the tenant's node-host, if the scheduler runs one.
pub async fn stop(data_dir: PathBuf, node_id: String) -> Result<()> {
    match admin_handle(data_dir).await? {
        Admin::Remote(mut c) => {
            let r = c
                .stop_node(pb::TenantDevicesRequest {
                    node_id: node_id.clone(),
                })
                .await
                .context("the scheduler refused")?
                .into_inner();
            if r.was_running {
                println!("stopped {node_id}'s node-host; its next Schedule starts it again");
            } else {
                println!("{node_id}'s node-host was not running");
            }
        }
        Admin::Local(store) => {
            // Checks the node id is a tenant's.
            skylight_scheduler::admin::tenant_detail(&store, node_id_arg(&node_id)?).await?;
            println!("the scheduler is not running, so neither is {node_id}'s node-host");
        }
    }
    Ok(())
}
