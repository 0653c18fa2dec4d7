//! `POST /v1/builds`, `DELETE /v1/builds/{id}` and `POST /v1/builds/{id}/execute`: the client's
//! side of remote execution. An execute request answers a stream of newline-delimited JSON
//! events; dropping it withdraws the request.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::Stream;

use rmake_proto::exec::{
    BuildCreated, BuildRequest, ExecuteEvent, ExecuteRequest, ExecuteResponse, InlineFile,
};
use rmake_proto::{BuildId, Digest};

use super::extract::{path_param, ApiJson};
use crate::error::StoreError;
use crate::readsets::Hit;
use crate::sched::{validate, SchedError, Submission};
use crate::state::AppState;

/// A blank line sent this often while an action waits, so a connection that went away
/// without a FIN (or an idle-closing proxy) is noticed even when nothing happens; readers skip
/// blank lines. (A client that closes its connection is noticed at once.)
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Opens a build.
pub(super) async fn open(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BuildRequest>,
) -> Json<BuildCreated> {
    Json(BuildCreated {
        build: state.sched.open_build(req),
    })
}

/// Cancels a build: its waiters get `failed`, its actions nobody else waits for are dropped.
pub(super) async fn cancel(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, SchedError> {
    let id = BuildId(path_param(id)?);
    if state.sched.cancel_build(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(SchedError::UnknownBuild(id.to_string()))
    }
}

/// Runs one action for a build: a cache hit answers at once, otherwise the action is queued
/// (after checking its paths and that its input blobs are stored) and its events stream back,
/// the first (`queued`) saying why the cache missed.
pub(super) async fn execute(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<ExecuteRequest>,
) -> Result<Response, SchedError> {
    let build = BuildId(path_param(id)?);
    validate::spec(&req.spec).map_err(SchedError::bad_request)?;
    state.sched.touch_build(&build)?;
    let key = req.spec.key();
    // One blocking task: the cache lookup (with the small outputs of a hit, or why it missed)
    // and the check that the input blobs are stored.
    let cache = state.readsets.clone();
    let blobs = state.blobs.clone();
    let (spec, prereqs, look) = (
        req.spec.clone(),
        req.prereqs.clone(),
        !req.skip_cache_lookup,
    );
    let checked = tokio::task::spawn_blocking(move || -> Result<Checked, StoreError> {
        let mut why = None;
        if look {
            if let Some(hit) = cache.lookup(&spec, &prereqs)? {
                let inline = cache.inline(&hit.result.output_files);
                return Ok(Checked::Hit(Box::new(hit), inline));
            }
            why = Some(cache.explain(&spec, &prereqs)?.reasons);
        }
        let mut wanted = vec![spec.input_root];
        wanted.extend(spec.input_blobs());
        let present = blobs.has_many(&wanted)?;
        let missing: Vec<Digest> = wanted
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(d, _)| *d)
            .collect();
        Ok(Checked::Miss { why, missing })
    })
    .await??;
    let why = match checked {
        Checked::Hit(hit, inline) => {
            tracing::info!(key = %hit.key, target = %req.target, %build, "action-cache hit");
            let ev = ExecuteEvent::Finished(Box::new(ExecuteResponse {
                key: hit.key,
                result: hit.result,
                cached: true,
                inline,
            }));
            return Ok(ndjson(Body::from(line(&ev))));
        }
        Checked::Miss { missing, .. } if !missing.is_empty() => {
            return Err(SchedError::MissingInputs {
                count: missing.len(),
                example: missing[0],
            });
        }
        Checked::Miss { why, .. } => why,
    };
    let sub = state.sched.submit_explained(&build, req, key, why)?;
    Ok(ndjson(Body::from_stream(events(sub))))
}

/// What the blocking checks of an execute request found.
enum Checked {
    /// A cache hit, with the contents of its small outputs.
    Hit(Box<Hit>, Vec<InlineFile>),
    /// Not in the cache (`why`, when it was consulted); the input blobs not stored.
    Miss {
        why: Option<Vec<String>>,
        missing: Vec<Digest>,
    },
}

fn ndjson(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// One event as a JSON line.
fn line(ev: &ExecuteEvent) -> Bytes {
    let mut v = serde_json::to_vec(ev).unwrap_or_else(|e| {
        // Serialising these types cannot fail; say so on the stream if it ever does.
        format!(r#"{{"event":"failed","reason":"cannot encode event: {e}"}}"#).into_bytes()
    });
    v.push(b'\n');
    Bytes::from(v)
}

/// The events of a submission as JSON lines, with blank keep-alive lines while nothing
/// happens; ends after `finished` or `failed`. Dropping it drops the guard, which withdraws
/// the request.
fn events(sub: Submission) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(Some(sub), |state| async move {
        let mut sub = state?;
        let ev = tokio::select! {
            ev = sub.events.recv() => ev?,
            _ = tokio::time::sleep(KEEPALIVE) => return Some((Ok(Bytes::from_static(b"\n")), Some(sub))),
        };
        let last = matches!(ev, ExecuteEvent::Finished(_) | ExecuteEvent::Failed { .. });
        Some((Ok(line(&ev)), (!last).then_some(sub)))
    })
}
