//! `AppState`: everything a request handler needs, and how it is opened from a [`Config`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmake_cas::BlobStore;
use rmake_cas::DiskStore;

use crate::action_cache::ActionCache;
use crate::auth::Auth;
use crate::blobs::BlobService;
use crate::config::{Config, Limits};
use crate::error::StoreError;
use crate::meta::Meta;
use crate::pins::Pins;
use crate::readsets::trees::{TreeViews, CAPACITY};
use crate::readsets::ReadSetCache;
use crate::reconcile::{reconcile, ReconcileReport};
use crate::sched::Scheduler;

/// Shared state of the service; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Blobs, their metadata and pins.
    pub blobs: Arc<BlobService>,
    /// The action cache (results by key).
    pub actions: ActionCache,
    /// The action cache as execute requests use it: by `pre_key` and read sets.
    pub readsets: ReadSetCache,
    /// The token table.
    pub auth: Arc<Auth>,
    /// Request size limits.
    pub limits: Limits,
    /// Longest pin lease granted.
    pub max_pin_ttl: Duration,
    /// When the service started.
    pub started: Instant,
    /// Remote execution: builds, the queue, workers and leases.
    pub sched: Arc<Scheduler>,
}

impl AppState {
    /// Opens the store under `<data_dir>/cas` and the metadata under `<data_dir>/meta`, and
    /// reconciles them (blocking: call it before serving or inside `spawn_blocking`).
    pub fn open(config: &Config) -> Result<(AppState, ReconcileReport), StoreError> {
        let store = DiskStore::open(config.data_dir.join("cas"))?.with_fsync(config.fsync);
        if !config.fsync {
            tracing::warn!("fsync = false: a power loss may lose or damage recently stored blobs");
        }
        let meta = Meta::open(&config.data_dir.join("meta"))?;
        let report = reconcile(&store, &meta)?;
        Ok((AppState::from_parts(Arc::new(store), meta, config), report))
    }

    /// Assembles a state from an already-open store and metadata database.
    pub fn from_parts(store: Arc<dyn BlobStore>, meta: Meta, config: &Config) -> AppState {
        let blobs = Arc::new(BlobService::new(
            store,
            Arc::new(meta),
            Arc::new(Pins::new()),
            config.max_cache_bytes,
        ));
        let actions = ActionCache::new(blobs.clone());
        let readsets = ReadSetCache::new(
            actions.clone(),
            blobs.meta().clone(),
            Arc::new(TreeViews::new(blobs.store().clone(), CAPACITY)),
        );
        AppState {
            sched: Arc::new(Scheduler::new(
                config.sched,
                readsets.clone(),
                blobs.pins().clone(),
            )),
            actions,
            readsets,
            blobs,
            auth: Arc::new(Auth::new(&config.tokens)),
            limits: config.limits,
            max_pin_ttl: config.max_pin_ttl,
            started: Instant::now(),
        }
    }
}
