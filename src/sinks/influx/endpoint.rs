//! Where writes go and how they authenticate, for each of the three write APIs.
//!
//! | api | request | Authorization |
//! |---|---|---|
//! | `v2` (InfluxDB 2.x/3.x, Cloud) | `POST /api/v2/write?org=O&bucket=B&precision=ns` | `Token <token>` |
//! | `v1-compat` (InfluxDB 1.8+, the HA add-on) | `POST /api/v2/write?bucket=DB/RP&precision=ns` | `Token <user>:<password>` |
//! | `v1` (InfluxDB 1.x, VictoriaMetrics) | `POST /write?db=DB&rp=RP&precision=ns` | Basic `<user>:<password>` |
//!
//! Without credentials no header is sent (an open InfluxDB 1.x, VictoriaMetrics). The query
//! values are percent-encoded by the URL type; the header is marked sensitive so it never shows
//! in debug output, and no credential ever goes into the URL (which errors may print).

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::config::{InfluxApi, InfluxConfig, Secret};

/// How a request proves who sends it.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// No header.
    None,
    /// `Authorization: Token …`, ready to send.
    Token(HeaderValue),
    /// HTTP Basic, for the v1 `/write` endpoint.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// Why the endpoint cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `url` does not parse.
    #[error("url `{url}`: {reason}")]
    Url {
        /// The configured URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A token or password file cannot be read.
    #[error("reading the {what} file: {source}")]
    Secret {
        /// Which secret.
        what: &'static str,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The token holds characters an HTTP header cannot carry.
    #[error("the {what} contains characters not allowed in an HTTP header")]
    Header {
        /// Which secret.
        what: &'static str,
    },
}

/// The write URL and its authentication.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The full write URL, query included.
    pub url: Url,
    /// The credentials.
    pub auth: Auth,
}

impl Endpoint {
    /// The endpoint `influx` describes, reading secret files now.
    ///
    /// # Errors
    /// [`EndpointError`] for a bad URL, an unreadable secret file or a token unfit for a header.
    pub(crate) fn new(influx: &InfluxConfig) -> Result<Self, EndpointError> {
        let database = influx.database.as_deref().unwrap_or_default();
        let rp = influx.retention_policy.as_deref();
        let (path, params, auth) = match influx.api() {
            InfluxApi::V2 => {
                let org = influx.org.as_deref().unwrap_or_default();
                let bucket = influx.bucket.as_deref().unwrap_or_default();
                (
                    "/api/v2/write",
                    vec![("org", org.to_string()), ("bucket", bucket.to_string())],
                    v2_auth(influx)?,
                )
            }
            InfluxApi::V1Compat => {
                let bucket = format!("{database}/{}", rp.unwrap_or_default());
                ("/api/v2/write", vec![("bucket", bucket)], compat_auth(influx)?)
            }
            InfluxApi::V1 => {
                let mut params = vec![("db", database.to_string())];
                params.extend(rp.map(|rp| ("rp", rp.to_string())));
                ("/write", params, basic_auth(influx)?)
            }
        };
        Ok(Self { url: write_url(&influx.url, path, &params)?, auth })
    }
}

/// `base` + `path` with `params` and `precision=ns` in the query.
fn write_url(base: &str, path: &str, params: &[(&str, String)]) -> Result<Url, EndpointError> {
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    let mut url = Url::parse(&joined)
        .map_err(|e| EndpointError::Url { url: base.to_string(), reason: e.to_string() })?;
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            query.append_pair(key, value);
        }
        query.append_pair("precision", "ns");
    }
    Ok(url)
}

fn v2_auth(influx: &InfluxConfig) -> Result<Auth, EndpointError> {
    let token = influx.token().map_err(|source| EndpointError::Secret { what: "token", source })?;
    token.map_or(Ok(Auth::None), |t| token_header("token", t.expose()))
}

fn compat_auth(influx: &InfluxConfig) -> Result<Auth, EndpointError> {
    let Some(user) = &influx.username else { return Ok(Auth::None) };
    let password = v1_password(influx)?;
    token_header("username or password", &format!("{user}:{}", password.expose()))
}

fn basic_auth(influx: &InfluxConfig) -> Result<Auth, EndpointError> {
    let Some(user) = &influx.username else { return Ok(Auth::None) };
    Ok(Auth::Basic { user: user.clone(), password: v1_password(influx)? })
}

fn v1_password(influx: &InfluxConfig) -> Result<Secret, EndpointError> {
    let password = influx.password().map_err(|source| EndpointError::Secret { what: "password", source })?;
    Ok(password.unwrap_or_else(|| Secret::new(String::new())))
}

/// `Token <credential>` as a header value that never prints.
fn token_header(what: &'static str, credential: &str) -> Result<Auth, EndpointError> {
    let mut value =
        HeaderValue::from_str(&format!("Token {credential}")).map_err(|_| EndpointError::Header { what })?;
    value.set_sensitive(true);
    Ok(Auth::Token(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> InfluxConfig {
        toml::from_str(toml).unwrap()
    }

    fn token(endpoint: &Endpoint) -> &str {
        match &endpoint.auth {
            Auth::Token(value) => value.to_str().unwrap(),
            other => panic!("not a token: {other:?}"),
        }
    }

    #[test]
    fn v2_writes_to_org_and_bucket_with_a_token() {
        let e = Endpoint::new(&config(
            r#"url = "https://db.example:8086/"
               org = "my org"
               bucket = "solar&co"
               token = "s3cr=t""#,
        ))
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "https://db.example:8086/api/v2/write?org=my+org&bucket=solar%26co&precision=ns"
        );
        assert_eq!(token(&e), "Token s3cr=t");
        assert!(!format!("{e:?}").contains("s3cr"), "the token never prints: {e:?}");
    }

    #[test]
    fn v1_compat_names_database_slash_policy_and_sends_user_colon_password() {
        let e = Endpoint::new(&config(
            r#"url = "http://a0d7b954-influxdb:8086"
               api = "v1-compat"
               database = "homeassistant"
               retention_policy = "autogen"
               username = "ha"
               password = "pw""#,
        ))
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "http://a0d7b954-influxdb:8086/api/v2/write?bucket=homeassistant%2Fautogen&precision=ns"
        );
        assert_eq!(token(&e), "Token ha:pw");
        let default_rp = Endpoint::new(&config(
            r#"api = "v1-compat"
                                                   database = "db""#,
        ))
        .unwrap();
        assert!(default_rp.url.as_str().contains("bucket=db%2F&"), "{}", default_rp.url);
        assert!(matches!(default_rp.auth, Auth::None));
    }

    #[test]
    fn v1_writes_to_db_and_rp_with_basic_auth() {
        let e = Endpoint::new(&config(
            r#"database = "solar"
               username = "u"
               password = "p""#,
        ))
        .unwrap();
        assert_eq!(e.url.as_str(), "http://localhost:8086/write?db=solar&precision=ns");
        assert!(matches!(&e.auth, Auth::Basic { user, password } if user == "u" && password.expose() == "p"));
    }

    #[test]
    fn a_token_file_wins_over_the_inline_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let toml = format!(
            "org = \"o\"\nbucket = \"b\"\ntoken = \"inline\"\ntoken_file = {:?}",
            file.display().to_string()
        );
        assert_eq!(token(&Endpoint::new(&config(&toml)).unwrap()), "Token from-file");
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(Endpoint::new(&config(&toml)), Err(EndpointError::Secret { what: "token", .. })));
    }
}
