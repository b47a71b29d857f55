//! The `[http] token` check: a middleware in front of every route except the `open` paths, for
//! every peer except the `trusted` ones (the add-on's ingress proxy: Home Assistant has logged
//! the user in).
//!
//! A request passes with `Authorization: Bearer <token>`, or with the cookie a browser got by
//! opening a page once with `?token=<token>`: that answer is a redirect to the same page without
//! the token, so it leaves the address bar, and sets the cookie (HttpOnly, SameSite=Strict).
//! The cookie holds a digest of the token, not the token. Every comparison is between SHA-256
//! digests in constant time, so neither the token's content nor its length leaks through
//! timing. This module never logs a token, a cookie or a query string.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{SHA256, digest};

use crate::config::HttpConfig;

/// The cookie that carries the token's digest.
pub(super) const COOKIE: &str = "inverter_monitor_token";
/// The query parameter a browser may carry the token in, once.
pub(super) const QUERY: &str = "token";
/// A year: the cookie outlives restarts, since it is derived from the token alone.
const COOKIE_MAX_AGE: u32 = 365 * 24 * 3600;

type Digest = [u8; 32];

/// What the check needs; no token configured, no check.
#[derive(Clone)]
pub(super) struct Auth(Option<Arc<Keys>>);

struct Keys {
    /// SHA-256 of the token.
    token: Digest,
    /// The cookie's value (a digest of the token, hex).
    cookie: String,
    /// SHA-256 of the cookie's value.
    cookie_digest: Digest,
    /// Who needs no token: [`HttpConfig::trusts`] and [`HttpConfig::is_open`] decide.
    http: HttpConfig,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.0.is_some() { "[redacted]" } else { "none" };
        f.debug_struct("Auth").field("token", &token).finish()
    }
}

impl Auth {
    /// The check for `http`'s token and open paths.
    pub(super) fn new(http: &HttpConfig) -> Self {
        Self(http.token.as_ref().map(|token| {
            let token = token.expose();
            let cookie = hex(&sha256(&format!("inverter-monitor cookie\0{token}")));
            Arc::new(Keys {
                token: sha256(token),
                cookie_digest: sha256(&cookie),
                cookie,
                http: http.clone(),
            })
        }))
    }
}

/// The middleware: passes the request on, or answers 401, or redirects a `?token=` away.
pub(super) async fn check(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let Some(keys) = auth.0 else { return next.run(request).await };
    let uri = request.uri();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    if peer.is_some_and(|ip| keys.http.trusts(ip)) || keys.http.is_open(uri.path()) {
        return next.run(request).await;
    }
    if let Some(candidate) = query_token(uri) {
        return if same(&sha256(candidate), &keys.token) {
            redirect_setting_cookie(uri, &keys.cookie)
        } else {
            unauthorized()
        };
    }
    let bearer = bearer(request.headers()).is_some_and(|t| same(&sha256(t), &keys.token));
    let cookie = cookies(request.headers()).any(|c| same(&sha256(c), &keys.cookie_digest));
    if bearer || cookie { next.run(request).await } else { unauthorized() }
}

/// 401, saying how to send the token (never what it is).
fn unauthorized() -> Response {
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"inverter-monitor\"")];
    let body = "401 Unauthorized: send `Authorization: Bearer <token>`, or open this page once with \
                ?token=<token> ([http] token in the configuration)\n";
    (StatusCode::UNAUTHORIZED, challenge, body).into_response()
}

/// 303 to the same page without the token, with the cookie. The location is relative, so it
/// works behind Home Assistant's ingress and other proxies that add a path prefix.
fn redirect_setting_cookie(uri: &Uri, cookie: &str) -> Response {
    let set_cookie =
        format!("{COOKIE}={cookie}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict");
    let headers = [
        (header::LOCATION, HeaderValue::from_str(&clean_location(uri))),
        (header::SET_COOKIE, HeaderValue::from_str(&set_cookie)),
        (header::CACHE_CONTROL, Ok(HeaderValue::from_static("no-store"))),
    ];
    let mut response = StatusCode::SEE_OTHER.into_response();
    for (name, value) in headers {
        // Both values are built from URL-safe text, so they are always valid header values.
        if let Ok(value) = value {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `./<last path segment>` plus the query without the token.
fn clean_location(uri: &Uri) -> String {
    let path = uri.path();
    let last = &path[path.rfind('/').map_or(0, |at| at + 1)..];
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(QUERY))
        .collect();
    if rest.is_empty() { format!("./{last}") } else { format!("./{last}?{}", rest.join("&")) }
}

/// The `token` query parameter, when there is one.
fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?.split('&').find_map(|pair| pair.strip_prefix(QUERY)?.strip_prefix('='))
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Every value of our cookie in the `Cookie` headers.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn sha256(text: &str) -> Digest {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

/// Equality that takes the same time wherever the first difference is.
fn same(a: &Digest, b: &Digest) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clean_location_keeps_the_page_and_the_other_parameters() {
        let location = |uri: &str| clean_location(&uri.parse().unwrap());
        assert_eq!(location("/?token=abc"), "./");
        assert_eq!(location("/api/snapshot?token=abc"), "./snapshot");
        assert_eq!(location("/api/snapshot?a=1&token=abc&b=2"), "./snapshot?a=1&b=2");
        assert_eq!(location("/api/snapshot?tokens=1&token=abc"), "./snapshot?tokens=1");
    }

    #[test]
    fn the_token_is_found_only_where_it_is_sent() {
        let uri: Uri = "/x?tokens=no&token=yes".parse().unwrap();
        assert_eq!(query_token(&uri), Some("yes"));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; inverter_monitor_token=c1"));
        headers.append(header::COOKIE, HeaderValue::from_static("inverter_monitor_token=c2"));
        assert_eq!(bearer(&headers), Some("abc"));
        assert_eq!(cookies(&headers).collect::<Vec<_>>(), ["c1", "c2"]);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        assert!(same(&sha256("a"), &sha256("a")));
        assert!(!same(&sha256("a"), &sha256("b")));
        let auth = Auth::new(&HttpConfig {
            token: Some(crate::config::Secret::new("0123456789abcdef".into())),
            ..HttpConfig::default()
        });
        assert_eq!(format!("{auth:?}"), "Auth { token: \"[redacted]\" }");
    }
}
