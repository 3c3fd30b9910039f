//! The API server on a random port for the integration tests: every scenario runs on a fresh
//! SQLite database with the in-process counters, and on a fresh MariaDB database with Redis
//! (`VOLTFLEET_TEST_MYSQL_URL`, Redis at `VOLTFLEET_TEST_REDIS_URL` or
//! `redis://127.0.0.1:6379`, keys under a prefix of the test's own).

// Each test file uses its own share of these.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::{Layers, ServiceName, Settings, Source};
use voltfleet_core::context::AppContext;
use voltfleet_core::metrics::Metrics;
use voltfleet_core::testing::TestMySql;

pub const SECRET: &str = "a-test-secret-of-more-than-thirty-two-bytes";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

/// The API service on 127.0.0.1 with its own database, and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The server's own context, for seeding what the API only reads.
    pub ctx: AppContext,
    shutdown: CancellationToken,
    mysql: Option<TestMySql>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// With the login throttles low enough to reach in a test.
    pub async fn spawn(backend: Backend) -> anyhow::Result<TestApp> {
        TestApp::spawn_with(
            backend,
            "login_failures_per_account = 3\nlogin_failures_per_ip = 6\n",
        )
        .await
    }

    /// With `api_settings`, lines of TOML for the `[api]` table.
    pub async fn spawn_with(backend: Backend, api_settings: &str) -> anyhow::Result<TestApp> {
        let data_dir = tempfile::tempdir()?;
        let mut toml = format!(
            "data_dir = {:?}\n[api]\ntoken_secret = {SECRET:?}\n{api_settings}\n",
            data_dir.path().display().to_string()
        );
        let mysql = match backend {
            Backend::Sqlite => None,
            Backend::MariaDb => {
                let mysql = TestMySql::create().await?;
                let redis = std::env::var("VOLTFLEET_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                toml.push_str(&format!(
                    "[database]\nurl = {:?}\n[redis]\nurl = {redis:?}\nkey_prefix = \"{}:\"\n",
                    mysql.url, mysql.name
                ));
                Some(mysql)
            }
        };
        let layers = Layers::from_toml_str(&toml, Source::Default)?;
        let settings = Settings::from_layers(&layers)?.settings;
        let ctx = AppContext::connect(settings, Metrics::new(), true).await?;
        let app = {
            let routes = voltfleet_api::routes(&ctx);
            voltfleet_core::http::service_app(ServiceName::Api, ctx.clone(), routes)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}/api/v1", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        tokio::spawn(voltfleet_core::http::serve(
            ServiceName::Api,
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(2),
        ));
        Ok(TestApp {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            ctx,
            shutdown,
            mysql,
            _data_dir: data_dir,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(mysql) = &self.mysql {
            mysql.drop_database().await?;
        }
        Ok(())
    }

    /// A request to `path` under `/api/v1`, to add headers to before [`TestApp::send`].
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        Answer::read(request.send().await?).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.request(Method::POST, path).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Answer> {
        let mut request = self.request(Method::GET, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn sign_up(&self, email: &str) -> anyhow::Result<Value> {
        let answer = self
            .post(
                "/accounts",
                json!({"email": email, "password": PASSWORD, "name": "Dora Driver"}),
                None,
            )
            .await?;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        Ok(answer.body)
    }

    /// Logs in and returns `(access_token, refresh_token)`.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<(String, String)> {
        let answer = self
            .post(
                "/auth/login",
                json!({"email": email, "password": password}),
                None,
            )
            .await?;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        Ok((
            text(&answer.body, "access_token"),
            text(&answer.body, "refresh_token"),
        ))
    }

    /// Signs up and logs in; returns the access token.
    pub async fn driver(&self, email: &str) -> anyhow::Result<String> {
        self.sign_up(email).await?;
        Ok(self.login(email, PASSWORD).await?.0)
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> anyhow::Result<Answer> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Asserts a problem+json answer with this status, carrying the response's request id.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(
            self.header(CONTENT_TYPE.as_str()),
            Some("application/problem+json"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.body["status"], status.as_u16());
        for member in ["type", "title", "detail", "instance"] {
            assert!(self.body[member].is_string(), "{member} in {:?}", self.body);
        }
        let request_id = self.header("x-request-id");
        assert!(request_id.is_some());
        assert_eq!(self.body["request_id"].as_str(), request_id);
    }

    /// The fields named in the problem's `errors`.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| text(e, "field")).collect())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

/// Runs each scenario `async fn(&TestApp)` against a fresh `TestApp::spawn` on SQLite and on
/// MariaDB + Redis.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> anyhow::Result<()> {
                    let app = super::TestApp::spawn(super::Backend::Sqlite).await?;
                    super::$scenario(&app).await?;
                    app.stop().await
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> anyhow::Result<()> {
                    let app = super::TestApp::spawn(super::Backend::MariaDb).await?;
                    super::$scenario(&app).await?;
                    app.stop().await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
