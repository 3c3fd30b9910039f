//! The Back Office on a random port for the handler tests: every scenario runs on a fresh
//! SQLite database with the in-process counters, and on a fresh MariaDB database with Redis
//! (`VOLTFLEET_TEST_MYSQL_URL`, Redis at `VOLTFLEET_TEST_REDIS_URL` or
//! `redis://127.0.0.1:6379`, keys under a prefix of the test's own).
//!
//! The client keeps no cookies by itself: each request names the session it sends, so that a
//! test can replay an old cookie on purpose.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::header::{COOKIE, HeaderMap, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::{Layers, ServiceName, Settings, Source};
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::Role;
use voltfleet_core::metrics::Metrics;
use voltfleet_core::storage::NewOperator;
use voltfleet_core::testing::TestMySql;

pub const PASSWORD: &str = "correct horse battery";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

/// The Back Office on 127.0.0.1 with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, also the Origin its pages have.
    pub origin: String,
    pub client: reqwest::Client,
    pub ctx: AppContext,
    shutdown: CancellationToken,
    mysql: Option<TestMySql>,
    _data_dir: tempfile::TempDir,
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// A response read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The value of cookie `name` set by this response.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| {
                let (pair, _) = value.split_once(';').unwrap_or((value, ""));
                let (key, value) = pair.split_once('=')?;
                (key == name).then(|| value.to_owned())
            })
    }

    /// The whole `Set-Cookie` line of cookie `name`.
    pub fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The first hidden `_csrf` value of the page.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"_csrf\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }

    #[track_caller]
    pub fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        assert_eq!(self.header(LOCATION.as_str()), Some(to));
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> anyhow::Result<TestApp> {
        let data_dir = tempfile::tempdir()?;
        let mut toml = format!(
            "data_dir = {:?}\n[backoffice]\ncookie_secure = false\nlogin_failures_per_account = 3\nlogin_failures_per_ip = 6\npage_size = 2\n",
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
            let routes = voltfleet_backoffice::routes(&ctx);
            voltfleet_core::http::service_app(ServiceName::Backoffice, ctx.clone(), routes)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        tokio::spawn(voltfleet_core::http::serve(
            ServiceName::Backoffice,
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(2),
        ));
        Ok(TestApp {
            origin,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
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

    pub async fn operator(&self, email: &str, role: Role) -> anyhow::Result<i64> {
        Ok(self
            .ctx
            .db
            .operators()
            .create(&NewOperator {
                email: email.to_owned(),
                display_name: format!("{role} user"),
                password_hash: hash_password(PASSWORD)?,
                role,
            })
            .await?)
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.origin));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let response = request.send().await?;
        Ok(Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await?,
        })
    }

    pub async fn get(&self, path: &str, browser: Option<&Browser>) -> anyhow::Result<Page> {
        let cookie = browser.map(|b| b.cookie.clone());
        self.send(self.request(Method::GET, path, cookie.as_deref()))
            .await
    }

    /// A form post from one of the Back Office's pages, with the browser's session.
    pub async fn post(
        &self,
        path: &str,
        browser: &Browser,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let mut form: Vec<(&str, &str)> = vec![("_csrf", &browser.csrf)];
        form.extend_from_slice(fields);
        self.send(
            self.request(Method::POST, path, Some(&browser.cookie))
                .header(ORIGIN, &self.origin)
                .form(&form),
        )
        .await
    }

    /// Opens the sign-in page and sends it; the page answered.
    pub async fn try_login(
        &self,
        email: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> anyhow::Result<Page> {
        let form = self.get("/backoffice/login", None).await?;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = form.csrf().expect("the sign-in form carries a token");
        let login_cookie = form
            .set_cookie("vf_bo_login")
            .expect("the sign-in form sets its cookie");
        let mut cookies = format!("vf_bo_login={login_cookie}");
        if let Some(cookie) = cookie {
            cookies.push_str("; ");
            cookies.push_str(cookie);
        }
        self.send(
            self.request(Method::POST, "/backoffice/login", Some(&cookies))
                .header(ORIGIN, &self.origin)
                .form(&[
                    ("_csrf", token.as_str()),
                    ("email", email),
                    ("password", password),
                ]),
        )
        .await
    }

    /// Signs in and returns the browser's session.
    pub async fn login(&self, email: &str) -> anyhow::Result<Browser> {
        let answer = self.try_login(email, PASSWORD, None).await?;
        answer.assert_redirect("/backoffice/");
        let session = answer
            .set_cookie("vf_bo_session")
            .expect("a session cookie");
        let cookie = format!("vf_bo_session={session}");
        let home = self
            .send(self.request(Method::GET, "/backoffice/", Some(&cookie)))
            .await?;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        let csrf = home.csrf().expect("the page carries the session's token");
        Ok(Browser { cookie, csrf })
    }
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
