//! The ingest pipeline: reorder -> graph -> store, in batches. Live ingestion and
//! `causeway ingest` both go through it, which is what makes a replay build the same graph.

use crate::{Store, StoreError};
use causeway_graph::{Graph, GraphConfig, Reorder, Verdict};
use causeway_model::Event;

/// Feeds events through the causal graph into a store.
pub struct Pipeline<S: Store> {
    graph: Graph,
    store: S,
    reorder: Reorder,
    batch: Vec<(Event, Verdict)>,
    batch_size: usize,
    lost: u64,
    committed: u64,
}

impl<S: Store> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("pending", &self.reorder.len())
            .field("batch", &self.batch.len())
            .field("lost", &self.lost)
            .finish()
    }
}

impl<S: Store> Pipeline<S> {
    /// Rebuild the graph from what `store` holds, then accept new events.
    pub fn open(store: S, cfg: GraphConfig) -> Result<Self, StoreError> {
        Self::open_observing(store, cfg, &mut |_| {})
    }

    /// [`Pipeline::open`], showing every replayed event to `observe` first (in time order),
    /// so other state of the node — its process index — is rebuilt by the same replay.
    pub fn open_observing(
        store: S,
        cfg: GraphConfig,
        observe: &mut dyn FnMut(&Event),
    ) -> Result<Self, StoreError> {
        let reorder = Reorder::new(cfg.reorder_ns);
        let mut graph = Graph::new(cfg);
        // Stored rows come back in time order: apply directly, no reordering needed.
        store.replay(&mut |e| {
            observe(&e);
            graph.apply(&e);
        })?;
        Ok(Pipeline {
            graph,
            store,
            reorder,
            batch: Vec::new(),
            batch_size: 10_000,
            lost: 0,
            committed: 0,
        })
    }

    /// Events per transaction (default 10 000).
    pub fn set_batch_size(&mut self, n: usize) {
        self.batch_size = n.max(1);
    }

    /// Take one event. It is applied to the graph once the reorder horizon has passed it
    /// and stored with the next batch.
    pub fn ingest(&mut self, ev: Event) -> Result<(), StoreError> {
        let mut r = std::mem::take(&mut self.reorder);
        let (graph, batch) = (&mut self.graph, &mut self.batch);
        r.push(ev, &mut |e| {
            let v = graph.apply(&e);
            batch.push((e, v));
        });
        self.reorder = r;
        if self.batch.len() >= self.batch_size {
            self.commit()?;
        }
        Ok(())
    }

    /// Store the applied events now (one transaction). On error the batch is dropped and
    /// counted as lost (see [`Pipeline::lost`]).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let r = self.store.append(&self.batch);
        match &r {
            Ok(()) => self.committed += self.batch.len() as u64,
            Err(e) => {
                self.lost += self.batch.len() as u64;
                tracing::error!(events = self.batch.len(), error = %e, "store append failed; events lost");
            }
        }
        self.batch.clear();
        r
    }

    /// Apply everything buffered and commit it.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let mut r = std::mem::take(&mut self.reorder);
        let (graph, batch) = (&mut self.graph, &mut self.batch);
        r.drain(&mut |e| {
            let v = graph.apply(&e);
            batch.push((e, v));
        });
        self.reorder = r;
        self.commit()
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Events dropped because the store failed to append them.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Events committed by this pipeline since it was opened.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Events waiting in the reorder buffer or the current batch.
    pub fn pending(&self) -> usize {
        self.reorder.len() + self.batch.len()
    }
}
