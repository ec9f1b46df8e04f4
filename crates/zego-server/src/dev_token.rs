//! Token04 minting for the development app only, so the debug page can log in without a backend.
//!
//! The development app's keys are public (they are printed at start), so minting its tokens over HTTP gives away
//! nothing; no other app's token is ever minted. `GET /dev/app` tells a page whether the server runs the dev
//! app; `POST /dev/token` with `{"app_id", "user_id", "ttl_seconds"?}` answers `{"app_id", "user_id", "token",
//! "expire"}`. Refusals are JSON `{"code", "message"}` with the SDK's error codes: 403 with 1001004 for an app
//! that is not the dev app (or no dev app at all), 400 for a bad user_id (its login code), ttl or body (1000008).

use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::token04::{self, Claims, Mode};
use zego_protocol::validate;

use crate::clock::Now;
use crate::config::AppConfig;

/// Lifetimes a minted token may have: a second to a day.
pub const TTL_SECONDS: RangeInclusive<u64> = 1..=24 * 60 * 60;
/// The lifetime when the request names none.
pub const DEFAULT_TTL_SECONDS: u64 = 60 * 60;

/// The development app, when the server runs it with its public keys; `None` turns minting off.
#[derive(Clone)]
pub struct DevApp(Option<Arc<AppConfig>>);

impl DevApp {
    /// The dev app among `apps`, only if it has exactly the public dev keys: an app that reuses the dev app id
    /// with secret keys of its own must never get tokens minted over HTTP.
    pub fn from_apps(apps: &[AppConfig]) -> Self {
        let dev = AppConfig::dev();
        DevApp(apps.contains(&dev).then(|| Arc::new(dev)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    app_id: u32,
    user_id: String,
    ttl_seconds: Option<u64>,
}

fn refuse(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    let body = json!({ "code": code, "message": message.into() });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /dev/app`: `{"app_id"}` of the dev app, or 404.
pub async fn app(State(dev): State<DevApp>) -> Response {
    match &dev.0 {
        Some(app) => Json(json!({ "app_id": app.app_id })).into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            error::ENGINE_APP_ID_INCORRECT,
            "this server does not run the development app",
        ),
    }
}

/// `POST /dev/token`: a Token04 of the dev app for a user, without room restriction.
pub async fn mint(State(dev): State<DevApp>, body: Bytes) -> Response {
    let request: MintRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                error::COMMON_INVALID_PARAMETER,
                format!("expected {{\"app_id\", \"user_id\", \"ttl_seconds\"?}}: {e}"),
            )
        }
    };
    let Some(app) = dev.0.as_deref().filter(|app| app.app_id == request.app_id) else {
        return refuse(
            StatusCode::FORBIDDEN,
            error::ENGINE_APP_ID_INCORRECT,
            "tokens are minted only for the development app",
        );
    };
    if let Err(code) = validate::user_id(&request.user_id) {
        return refuse(StatusCode::BAD_REQUEST, code, error::message(code));
    }
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !TTL_SECONDS.contains(&ttl) {
        return refuse(
            StatusCode::BAD_REQUEST,
            error::COMMON_INVALID_PARAMETER,
            format!(
                "ttl_seconds must be {} to {}",
                TTL_SECONDS.start(),
                TTL_SECONDS.end()
            ),
        );
    }
    let now = Now::system().unix_secs();
    let claims = Claims {
        app_id: app.app_id,
        user_id: request.user_id,
        nonce: i64::from(rand::random::<i32>()),
        ctime: now,
        expire: now + ttl as i64,
        payload: String::new(),
    };
    match token04::generate(&app.server_secret, &claims, Mode::Gcm, None) {
        Ok(token) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "app_id": claims.app_id,
                "user_id": claims.user_id,
                "token": token,
                "expire": claims.expire,
            })),
        )
            .into_response(),
        Err(code) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            error::message(code),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_dev_keys_enable_minting() {
        assert!(DevApp::from_apps(&[AppConfig::dev()]).0.is_some());
        assert!(DevApp::from_apps(&[]).0.is_none());
        let mut own_secret = AppConfig::dev();
        own_secret.server_secret = "fedcba9876543210fedcba9876543210".into();
        assert!(DevApp::from_apps(&[own_secret]).0.is_none());
    }
}
