//! Starting the node: the keys from the first signer, then the node built or read back and
//! brought to the chain's tip.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lightning_block_sync::poll::ValidatedBlockHeader;
use lightning_block_sync::{UnboundedCache, init};
use lightning_signer::bitcoin::Transaction;
use lightning_signer::lightning::chain::{BestBlock, Listen};
use lightning_signer::lightning::sign::{NodeSigner, ReceiveAuthKey, Recipient};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vls_protocol_client::KeysManagerClient;

use super::{Node, Settings};
use crate::signer_link::keys::RemoteKeys;
use crate::node::ldk::{self, Broadcaster, FeeRates, Parts};
use crate::signer_link::channel::Channels;
use crate::signer_link::transport::StageTransport;
use crate::node::sweep::{self, Sweeper, SweeperParts};
use crate::node::wallet::Wallet;
use bdk_wallet::chain::BlockId;
use lightning_signer::bitcoin::blockdata::constants::genesis_block;

/// Waits for a signer and initialises the keys through it; `None` if node-host stops
/// first. A signer that does not answer the init is retried.
pub async fn keys_from_signer(
    settings: &Settings,
    node: &Node,
    stop: &CancellationToken,
) -> Result<Option<Arc<RemoteKeys>>> {
    let receive_auth = receive_auth_key(settings)?;
    let transport = Arc::new(StageTransport::new(
        node.stage.clone(),
        settings.signer_deadline,
    ));
    let mut signers = node.stage.watch_signers();
    if signers.count() == 0 {
        tracing::info!("waiting for the tenant's signer to start the Lightning node");
    }
    loop {
        if !signers.attached(stop).await {
            return Ok(None);
        }
        let (t, network) = (transport.clone(), node.network.to_string());
        // The upstream client panics when its init gets no answer; the panic stays in this
        // blocking task, and the init is tried again.
        let init = tokio::task::spawn_blocking(move || {
            KeysManagerClient::new(t, network, None, None, ReceiveAuthKey(receive_auth))
        });
        let init = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            r = init => r,
        };
        match init {
            Ok(client) => {
                let channels = Channels::open(
                    &client,
                    node.stage.clone(),
                    settings.signer_deadline,
                    settings.store.kv().clone(),
                )?;
                let keys = RemoteKeys::new(
                    client,
                    transport.clone(),
                    settings.store.kv().clone(),
                    Arc::new(channels),
                )
                .context("cannot open the channel counter")?;
                let id = keys
                    .get_node_id(Recipient::Node)
                    .map_err(|()| anyhow!("the signer gave no node id"))?;
                if id != node.id {
                    bail!(
                        "the attached signer is node {id}, not this node ({}): refusing it",
                        node.id
                    );
                }
                return Ok(Some(Arc::new(keys)));
            }
            Err(_) => {
                tracing::warn!("the signer did not complete the init; trying again");
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// The key that authenticates payments to our blinded paths, created on first use and
/// kept in the node's store (with the rest of its state, in a directory only node-host
/// reads), so paths it handed out stay valid across restarts.
fn receive_auth_key(settings: &Settings) -> Result<[u8; 32]> {
    use crate::store::schema::{NODE, RECEIVE_AUTH_KEY};
    let kv = settings.store.kv();
    match kv
        .read(NODE.primary, NODE.secondary, RECEIVE_AUTH_KEY)
        .context("cannot read the receive key")?
    {
        Some(b) => b
            .try_into()
            .map_err(|_| anyhow!("the stored receive key is damaged (not 32 bytes)")),
        None => {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).context("no randomness")?;
            kv.write(NODE.primary, NODE.secondary, RECEIVE_AUTH_KEY, &key)
                .context("cannot store the receive key")?;
            Ok(key)
        }
    }
}

/// A node built and at the chain's tip, with what drives it.
pub struct Built {
    /// LDK's objects.
    pub node: ldk::LdkNode,
    /// The chain's tip the node is at.
    pub tip: ValidatedBlockHeader,
    /// Transactions to broadcast.
    pub queue: mpsc::UnboundedReceiver<Vec<Transaction>>,
    /// The fee table.
    pub fees: Arc<FeeRates>,
    /// The on-chain wallet.
    pub wallet: Arc<Wallet>,
    /// The broadcast queue.
    pub broadcaster: Arc<Broadcaster>,
    /// The output sweeper.
    pub sweeper: Arc<Sweeper>,
}

/// Builds the node new, or reads it back from its store, and brings it to the tip.
pub async fn build(
    settings: &Settings,
    keys: Arc<RemoteKeys>,
    handle: &Node,
) -> Result<Built> {
    let store = settings.store.clone();
    // Before anything is written: a store that cannot be read stops node-host as it is.
    let stored_node = ldk::has_node(&*store).context("the node's store cannot be used")?;
    let xpub = keys.wallet_xpub();
    let genesis = genesis_block(handle.network).block_hash();
    let open_wallet = |birth: BlockId| -> Result<Arc<Wallet>> {
        Ok(Arc::new(
            Wallet::open(store.clone(), &xpub, handle.network, birth, genesis)
                .context("cannot open the wallet")?,
        ))
    };
    // A wallet already stored follows the chain from where it stopped, with the node.
    let stored_wallet = if Wallet::exists(&store).context("the node's store cannot be used")? {
        Some(open_wallet(BlockId {
            height: 0,
            hash: genesis,
        })?)
    } else {
        None
    };
    let fees = Arc::new(FeeRates::flat(ldk::FEE_FLOOR));
    super::chain::update_fees(&settings.chain, &fees).await;
    let (broadcaster, queue) = Broadcaster::new();
    let broadcaster = Arc::new(broadcaster);
    let sweeper_parts = SweeperParts {
        store: store.clone(),
        broadcaster: broadcaster.clone(),
        fees: fees.clone(),
        keys: keys.clone(),
        logger: Arc::new(ldk::Logger),
    };
    let parts = Parts {
        network: handle.network,
        keys,
        store: store.clone(),
        fees: fees.clone(),
        broadcaster: broadcaster.clone(),
    };
    let chain = settings.chain.clone();
    let (node, tip, stored_sweeper) = if stored_node {
        // Reading channels back asks the signer for their keys: off the async workers.
        let restored = tokio::task::spawn_blocking(move || ldk::restore_node(parts))
            .await
            .map_err(|_| anyhow!("reading the node back failed (the signer went away?)"))?
            .context("cannot read the node back from its store")?;
        let ldk::Restored {
            node,
            manager_block,
            monitors,
        } = restored;
        // A monitor follows the chain together with what it broadcasts through.
        let monitors: Vec<_> = monitors
            .into_iter()
            .map(|(hash, m)| {
                let with = (m, broadcaster.clone(), fees.clone(), node.logger.clone());
                (hash, with)
            })
            .collect();
        // Outputs the sweeper tracks are never dropped: one that cannot be read stops here.
        let stored_sweeper =
            sweep::restore(&sweeper_parts).context("the node's store cannot be used")?;
        let mut cache = UnboundedCache::new();
        let tip = {
            let mut listeners: Vec<(_, &(dyn Listen + Send + Sync))> = vec![(
                manager_block,
                &*node.channel_manager as &(dyn Listen + Send + Sync),
            )];
            for (hash, m) in &monitors {
                listeners.push((*hash, m as &(dyn Listen + Send + Sync)));
            }
            if let Some(w) = &stored_wallet {
                listeners.push((w.tip().hash, &**w as &(dyn Listen + Send + Sync)));
            }
            if let Some((best, s)) = &stored_sweeper {
                listeners.push((best.block_hash, s as &(dyn Listen + Send + Sync)));
            }
            init::synchronize_listeners(&*chain, handle.network, &mut cache, listeners)
                .await
                .map_err(|e| anyhow!("cannot bring the node to the chain's tip: {e:?}"))?
        };
        let restored = ldk::Restored {
            node,
            manager_block,
            monitors: monitors.into_iter().map(|(h, (m, ..))| (h, m)).collect(),
        };
        tracing::info!(
            height = tip.height,
            "node read back from its store and synced"
        );
        (restored.finish()?, tip, stored_sweeper.map(|(_, s)| s))
    } else {
        let tip = init::validate_best_block_header(&*chain)
            .await
            .map_err(|e| anyhow!("cannot read the chain's tip: {e:?}"))?;
        let best = BestBlock::new(tip.header.block_hash(), tip.height);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as u32;
        let node = tokio::task::spawn_blocking(move || ldk::new_node(parts, best, now))
            .await
            .map_err(|_| anyhow!("building the node failed"))?
            .context("cannot store the new node")?;
        tracing::info!(height = tip.height, "new node created at the chain's tip");
        (node, tip, None)
    };
    handle.set_height(tip.height);
    let wallet = match stored_wallet {
        Some(w) => w,
        None => open_wallet(BlockId {
            height: tip.height,
            hash: tip.header.block_hash(),
        })?,
    };
    // A node stored before it had a sweeper has had nothing to sweep: it starts here.
    let sweeper = stored_sweeper.unwrap_or_else(|| {
        sweep::new(
            &sweeper_parts,
            BestBlock::new(tip.header.block_hash(), tip.height),
        )
    });
    Ok(Built {
        node,
        tip,
        queue,
        fees,
        wallet,
        broadcaster,
        sweeper: Arc::new(sweeper),
    })
}
