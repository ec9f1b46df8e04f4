//! The web assets embedded at build time (see build.rs): the debug page at `/` and `/debug/`, the JavaScript SDK
//! at `/sdk/`. Paths are looked up in a fixed table, so nothing outside it (no `..`, no file system) is reachable.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub(crate) struct Asset {
    /// The URL path it is served at, e.g. `/sdk/index.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A quoted strong ETag, the hash of `bytes`.
    pub etag: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What `/` serves.
pub(crate) const INDEX: &str = "/debug/index.html";

/// The asset at a URL path (`/` is the debug page).
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { INDEX } else { path };
    ASSETS
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// GET (and HEAD) of an embedded asset: 200 with its bytes, 304 when the client's If-None-Match has its ETag,
/// 404 for any path not in the table. Always revalidated (`no-cache`), so a rebuilt server is seen at once.
pub(crate) async fn serve(request: Request) -> Response {
    let Some(asset) = find(request.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let fresh = matches(request.headers(), asset.etag);
    let mut response = if fresh {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::from(asset.bytes));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 section 13.1.2) or is `*`.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_has_the_page_and_the_sdk() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        assert_eq!(find("/").unwrap().path, INDEX);
        assert!(find("/sdk/index.js").is_some());
        assert!(find("/debug/stamp.js").is_some());
        assert!(find("/sdk/../debug/index.html").is_none());
        assert!(find("/sdk/").is_none());
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let etag = "\"0123\"";
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            matches(&headers, etag)
        };
        assert!(with("\"0123\""));
        assert!(with("\"x\", W/\"0123\""));
        assert!(with("*"));
        assert!(!with("\"0124\""));
        assert!(!matches(&HeaderMap::new(), etag));
    }
}
