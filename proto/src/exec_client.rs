//! The remote-execution half of [`CoordinatorClient`]: builds and execute streams for the
//! client, registration, leases, heartbeats and results for workers.

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use reqwest::Method;

use crate::client::CoordinatorClient;
use crate::error::ClientError;
use crate::exec::{
    paths, BuildCreated, BuildRequest, CompleteResponse, ExecuteEvent, ExecuteRequest, ExplainRequest,
    ExplainResponse,
    HeartbeatRequest, HeartbeatResponse, LeaseId, LeaseOutcome, LeaseRequest, LeaseResponse,
    RegisterRequest, RegisterResponse, WorkerId,
};
use crate::types::BuildId;

/// The events of one execute request, read as they arrive.
pub struct ExecuteStream {
    body: futures::stream::BoxStream<'static, Result<bytes::Bytes, reqwest::Error>>,
    buf: BytesMut,
    done: bool,
}

impl std::fmt::Debug for ExecuteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteStream").field("done", &self.done).finish()
    }
}

impl ExecuteStream {
    /// The next event; `None` after the last (`finished` or `failed`). A stream that ends
    /// before its last event is a [`ClientError::Protocol`] error.
    pub async fn next(&mut self) -> Result<Option<ExecuteEvent>, ClientError> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let ev: ExecuteEvent = serde_json::from_slice(line)
                    .map_err(|e| ClientError::Protocol(format!("bad execute event: {e}")))?;
                if matches!(ev, ExecuteEvent::Finished(_) | ExecuteEvent::Failed { .. }) {
                    self.done = true;
                }
                return Ok(Some(ev));
            }
            match self.body.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None => {
                    self.buf.advance(self.buf.len());
                    return Err(ClientError::Protocol(
                        "the execute stream ended before the action did".into(),
                    ));
                }
            }
        }
    }

    /// Reads to the end and returns the last event.
    pub async fn finish(mut self) -> Result<ExecuteEvent, ClientError> {
        let mut last = None;
        while let Some(ev) = self.next().await? {
            last = Some(ev);
        }
        last.ok_or_else(|| ClientError::Protocol("empty execute stream".into()))
    }
}

impl CoordinatorClient {
    /// Opens a build.
    pub async fn create_build(&self, req: &BuildRequest) -> Result<BuildId, ClientError> {
        let created: BuildCreated =
            Self::json(self.send(self.request(Method::POST, paths::BUILDS).json(req)).await?)
                .await?;
        Ok(created.build)
    }

    /// Cancels a build: its queued actions are dropped and its running ones killed.
    pub async fn cancel_build(&self, build: &BuildId) -> Result<(), ClientError> {
        self.send(self.request(Method::DELETE, &paths::build(build))).await.map(drop)
    }

    /// Submits an action under `build`; read the returned stream to its end for the result.
    /// Dropping the stream early (or losing the connection) cancels the action unless another
    /// build waits on the same one.
    pub async fn execute(
        &self,
        build: &BuildId,
        req: &ExecuteRequest,
    ) -> Result<ExecuteStream, ClientError> {
        let resp = self.send(self.request(Method::POST, &paths::execute(build)).json(req)).await?;
        Ok(ExecuteStream { body: resp.bytes_stream().boxed(), buf: BytesMut::new(), done: false })
    }

    /// Asks why an action would miss the cache.
    pub async fn explain(&self, req: &ExplainRequest) -> Result<ExplainResponse, ClientError> {
        Self::json(self.send(self.request(Method::POST, paths::EXPLAIN).json(req)).await?).await
    }

    /// Registers a worker.
    pub async fn register_worker(
        &self,
        req: &RegisterRequest,
    ) -> Result<RegisterResponse, ClientError> {
        Self::json(self.send(self.request(Method::POST, paths::WORKERS).json(req)).await?).await
    }

    /// Deregisters a worker (graceful stop); its unfinished leases are re-queued at once.
    pub async fn deregister_worker(&self, worker: &WorkerId) -> Result<(), ClientError> {
        self.send(self.request(Method::DELETE, &paths::worker(worker))).await.map(drop)
    }

    /// Waits up to `wait_ms` for an action to run.
    pub async fn lease(
        &self,
        worker: &WorkerId,
        wait_ms: u64,
    ) -> Result<LeaseResponse, ClientError> {
        let req = LeaseRequest { wait_ms };
        Self::json(self.send(self.request(Method::POST, &paths::lease(worker)).json(&req)).await?)
            .await
    }

    /// Tells the coordinator the worker is alive and which leases it still runs.
    pub async fn heartbeat(
        &self,
        worker: &WorkerId,
        leases: Vec<LeaseId>,
    ) -> Result<HeartbeatResponse, ClientError> {
        let req = HeartbeatRequest { leases };
        Self::json(
            self.send(self.request(Method::POST, &paths::heartbeat(worker)).json(&req)).await?,
        )
        .await
    }

    /// Reports how a lease ended; `false` when the coordinator dropped it as stale.
    pub async fn complete_lease(
        &self,
        lease: &LeaseId,
        outcome: &LeaseOutcome,
    ) -> Result<bool, ClientError> {
        let resp: CompleteResponse = Self::json(
            self.send(self.request(Method::POST, &paths::complete(lease)).json(outcome)).await?,
        )
        .await?;
        Ok(resp.accepted)
    }
}
