//! Home mode's login ([`crate::session`]): `POST /login`, `POST /logout`, and
//! `GET /api/v1/session` for the page to learn the mode it runs in.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;

use crate::error::{AppError, Result};
use crate::session::{FAILURE_WINDOW, SESSION_COOKIE, SESSION_LIFETIME};
use crate::state::AppState;
use crate::token;

/// The login page with `message` in its error line (empty: none).
pub(crate) fn login_page(status: StatusCode, message: &str) -> Result<Response<Body>> {
    let (_, page) = super::assets::all()
        .iter()
        .find(|(n, _)| *n == "login.html")
        .ok_or(AppError::NotFound("no login page in this build"))?;
    let html = String::from_utf8_lossy(page).replace("<!--message-->", message);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::from(html))
        .map_err(AppError::internal)
}

/// The `Set-Cookie` value for a session `value` (empty value and no age: removal).
fn cookie(st: &AppState, value: &str, max_age: u64) -> Result<HeaderValue> {
    let secure = st
        .config()
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let v = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).map_err(AppError::internal)
}

fn see_other(location: &'static str) -> axum::http::response::Builder {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
}

/// The client's address: the connection's peer (no proxy header is trusted).
fn peer(info: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    info.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(a))| a.ip(),
    )
}

/// `GET /login`: the login page in home mode, else the player page.
pub async fn login_form(State(st): State<AppState>) -> Result<Response<Body>> {
    if st.sessions().is_some() {
        login_page(StatusCode::OK, "")
    } else {
        see_other("/")
            .body(Body::empty())
            .map_err(AppError::internal)
    }
}

/// `POST /login` (form field `password`): a session cookie and a redirect to the page, or the
/// login page again with 401; 429 after too many wrong passwords from one address.
pub async fn login(
    State(st): State<AppState>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response<Body>> {
    let Some(sessions) = st.sessions() else {
        return Err(AppError::NotFound(
            "no login here: no password is configured",
        ));
    };
    let ip = peer(info);
    if !sessions.attempt(ip).await {
        return Err(AppError::TooMany(
            "wrong password too often; wait and try again",
            u32::try_from(FAILURE_WINDOW.as_secs()).unwrap_or(u32::MAX),
        ));
    }
    let password = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !sessions.password_matches(&password) {
        tracing::warn!(client = %ip, "wrong password");
        return login_page(StatusCode::UNAUTHORIZED, "Wrong password.");
    }
    sessions.succeeded(ip).await;
    let value = sessions.issue(token::now_unix());
    see_other("/")
        .header(
            header::SET_COOKIE,
            cookie(&st, &value, SESSION_LIFETIME.as_secs())?,
        )
        .body(Body::empty())
        .map_err(AppError::internal)
}

/// `POST /logout`: removes the session cookie and goes back to the page (its login).
pub async fn logout(State(st): State<AppState>) -> Result<Response<Body>> {
    see_other("/")
        .header(header::SET_COOKIE, cookie(&st, "", 0)?)
        .body(Body::empty())
        .map_err(AppError::internal)
}

/// `GET /api/v1/session` reply.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// `open` (no secret, loopback), `home` (password) or `signed` (a service's secret).
    pub mode: &'static str,
    /// Whether the library can be listed (open mode, or home mode after a login).
    pub library: bool,
    /// Whether the token API needs an API key from this client (signed mode with a key).
    pub needs_api_key: bool,
    /// What "Media URL" accepts here.
    pub sources: &'static str,
}

/// `GET /api/v1/session`: the mode the page runs in (home mode: only after a login).
pub async fn session(State(st): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse> {
    let home = st.sessions().is_some();
    if home {
        st.authorize(&headers)?;
    }
    let mode = match (st.open_mode(), home) {
        (true, _) => "open",
        (false, true) => "home",
        (false, false) => "signed",
    };
    let reply = SessionInfo {
        mode,
        library: st.open_mode() || home,
        needs_api_key: !home && st.config().api_key.is_some(),
        sources: if st.open_mode() {
            "file:PATH (a file under the media folder)"
        } else {
            "an http(s) URL, or file:PATH (a file under the media folder)"
        },
    };
    let mut resp = Json(reply).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
