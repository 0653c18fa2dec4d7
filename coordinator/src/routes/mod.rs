//! The HTTP router: which path and method go to which handler, behind which permission.

use axum::middleware;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use tower_http::trace::TraceLayer;

use rmake_proto::exec::paths as exec_paths;
use rmake_proto::paths;

use crate::auth::{self, Guard, Permission};
use crate::error::ApiError;
use crate::state::AppState;

mod actions;
mod batch;
mod blobs;
mod builds;
mod explain;
mod extract;
mod pins;
mod status;
mod workers;

/// Builds the service's router. Errors (including unknown routes and methods) are JSON.
pub fn app(state: AppState) -> Router {
    let guard = |need: Permission, route: MethodRouter<AppState>| {
        route.route_layer(middleware::from_fn_with_state(
            Guard {
                auth: state.auth.clone(),
                need,
            },
            auth::require,
        ))
    };
    Router::new()
        .route(paths::HEALTHZ, get(status::healthz))
        .route(paths::STATUS, guard(Permission::Read, get(status::status)))
        .route(
            paths::FIND_MISSING,
            guard(Permission::Read, post(blobs::find_missing)),
        )
        .route(
            "/v1/blobs/{hash}/{size}",
            guard(Permission::Read, get(blobs::get_blob))
                .merge(guard(Permission::Upload, put(blobs::put_blob))),
        )
        .route(
            paths::BATCH_UPLOAD,
            guard(Permission::Upload, post(batch::batch_upload)),
        )
        .route(
            paths::BATCH_DOWNLOAD,
            guard(Permission::Read, post(batch::batch_download)),
        )
        .route(
            "/v1/actions/{key}",
            guard(Permission::Read, get(actions::lookup)),
        )
        .route(paths::PINS, guard(Permission::Submit, post(pins::pin)))
        .route(
            "/v1/pins/{build}",
            guard(Permission::Submit, delete(pins::unpin)),
        )
        .route(
            exec_paths::BUILDS,
            guard(Permission::Submit, post(builds::open)),
        )
        .route(
            "/v1/builds/{id}",
            guard(Permission::Submit, delete(builds::cancel)),
        )
        .route(
            "/v1/builds/{id}/execute",
            guard(Permission::Submit, post(builds::execute)),
        )
        .route(
            exec_paths::EXPLAIN,
            guard(Permission::Submit, post(explain::explain)),
        )
        .route(
            exec_paths::WORKERS,
            guard(Permission::Work, post(workers::register)),
        )
        .route(
            "/v1/workers/{id}",
            guard(Permission::Work, delete(workers::deregister)),
        )
        .route(
            "/v1/workers/{id}/lease",
            guard(Permission::Work, post(workers::lease)),
        )
        .route(
            "/v1/workers/{id}/heartbeat",
            guard(Permission::Work, post(workers::heartbeat)),
        )
        .route(
            "/v1/leases/{id}/complete",
            guard(Permission::Work, post(workers::complete)),
        )
        .route("/v1/farm", guard(Permission::Read, get(workers::farm)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
