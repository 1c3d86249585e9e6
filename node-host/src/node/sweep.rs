//! LDK's output sweeper: every output a closed channel leaves to us (our delayed output
//! after a force close, our HTLC transactions' outputs, our balance on their commitment)
//! is tracked in the store before its `SpendableOutputs` event counts as handled, and
//! swept to the wallet by a transaction the signer signs ([`crate::signer_link::spend`]).
//!
//! The sweeper follows the chain with the rest of the node, and is asked to sweep after
//! every new block and when a signer attaches, besides the background processor's timer:
//! a sweep the signer could not sign (none attached, or its chain a block behind) is
//! tried again then, and one whose transaction did not confirm is rebuilt and
//! rebroadcast each block until it does.

use std::io::Cursor;
use std::sync::Arc;

use crate::store::ldk_store::LdkStore;
use lightning_signer::lightning::chain::{BestBlock, Filter};
use lightning_signer::lightning::util::persist::{
    KVStoreSync, OUTPUT_SWEEPER_PERSISTENCE_KEY, OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
    OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning_signer::lightning::util::ser::ReadableArgs;
use lightning_signer::lightning::io::ErrorKind;
use lightning_signer::lightning::util::sweep::OutputSweeper;

use crate::node::ldk::{Broadcaster, FeeRates, Logger};
use crate::signer_link::keys::RemoteKeys;

/// The sweeper. Blocks reach it whole, so it watches no outputs through a filter.
pub type Sweeper = OutputSweeper<
    Arc<Broadcaster>,
    Arc<RemoteKeys>,
    Arc<FeeRates>,
    Arc<dyn Filter + Send + Sync>,
    Arc<LdkStore>,
    Arc<Logger>,
    Arc<RemoteKeys>,
>;

/// What a sweeper is made of.
pub struct SweeperParts {
    /// The store it lives in.
    pub store: Arc<LdkStore>,
    /// The broadcast queue.
    pub broadcaster: Arc<Broadcaster>,
    /// The fee table.
    pub fees: Arc<FeeRates>,
    /// The keys: they sign the sweeps and give the change destination.
    pub keys: Arc<RemoteKeys>,
    /// The logger.
    pub logger: Arc<Logger>,
}

/// Reads the stored sweeper with the block it last saw; `None` if none is stored. A
/// sweeper that is stored but cannot be read stops node-host: the outputs it tracks
/// would otherwise be forgotten.
pub fn restore(parts: &SweeperParts) -> std::io::Result<Option<(BestBlock, Sweeper)>> {
    let bytes = match parts.store.read(
        OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
        OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
        OUTPUT_SWEEPER_PERSISTENCE_KEY,
    ) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "cannot read the stored output sweeper: {e}"
            )));
        }
    };
    <(BestBlock, Sweeper)>::read(&mut Cursor::new(bytes), parts.args())
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("the stored output sweeper: {e:?}")))
}

/// A new sweeper at `best_block`, tracking nothing.
pub fn new(parts: &SweeperParts, best_block: BestBlock) -> Sweeper {
    let (broadcaster, fees, filter, spender, change, store, logger) = parts.args();
    OutputSweeper::new(
        best_block, broadcaster, fees, filter, spender, change, store, logger,
    )
}

/// What LDK builds or reads a sweeper from, in its order: the broadcaster, the fee table,
/// no filter, the keys that sign the sweeps, the keys that give the change destination,
/// the store and the logger.
type SweeperArgs = (
    Arc<Broadcaster>,
    Arc<FeeRates>,
    Option<Arc<dyn Filter + Send + Sync>>,
    Arc<RemoteKeys>,
    Arc<RemoteKeys>,
    Arc<LdkStore>,
    Arc<Logger>,
);

impl SweeperParts {
    fn args(&self) -> SweeperArgs {
        (
            self.broadcaster.clone(),
            self.fees.clone(),
            None,
            self.keys.clone(),
            self.keys.clone(),
            self.store.clone(),
            self.logger.clone(),
        )
    }
}

/// Sweeps what is due, logging (not failing) what cannot be swept now.
pub async fn sweep_due(sweeper: &Sweeper) {
    if sweeper
        .regenerate_and_broadcast_spend_if_necessary()
        .await
        .is_err()
    {
        tracing::debug!("nothing swept now; the sweeper retries");
    }
}
