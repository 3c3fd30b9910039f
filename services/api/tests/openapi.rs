//! The OpenAPI document against what the server really answers, for the answers every
//! operation gives whatever its handler: each operation that takes a JSON body is sent one
//! that is not JSON (400) and one not declared as JSON (415), and each operation is checked to
//! document the rate limit's 429 with `Retry-After`, which a client over its limit gets. The
//! API runs on 127.0.0.1 on a fresh SQLite database with the in-process counters.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::{Layers, ServiceName, Settings, Source};
use voltfleet_core::context::AppContext;
use voltfleet_core::metrics::Metrics;

const SECRET: &str = "a-test-secret-of-more-than-thirty-two-bytes";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The API on a free loopback port with `extra` TOML settings; returns its `/api/v1` URL.
async fn spawn(extra: &str) -> anyhow::Result<(String, CancellationToken, tempfile::TempDir)> {
    let data_dir = tempfile::tempdir()?;
    let toml = format!(
        "data_dir = {:?}\n[api]\ntoken_secret = {SECRET:?}\n{extra}",
        data_dir.path().display().to_string()
    );
    let layers = Layers::from_toml_str(&toml, Source::Default)?;
    let settings = Settings::from_layers(&layers)?.settings;
    let ctx = AppContext::connect(settings, Metrics::new(), true).await?;
    let routes = voltfleet_api::routes(&ctx);
    let app = voltfleet_core::http::service_app(ServiceName::Api, ctx, routes);
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
    Ok((base, shutdown, data_dir))
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// A driver's access token, from sign-up and login through the API.
async fn access_token(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let credentials = json!({"email": "dora@example.com", "password": "correct horse battery"});
    let mut sign_up = credentials.clone();
    sign_up["name"] = json!("Dora Driver");
    let created = client
        .post(format!("{base}/accounts"))
        .json(&sign_up)
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .json()
        .await?;
    Ok(login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Every operation of the document: (method, path, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    found.push((method.to_owned(), path.clone(), operation.clone()));
                }
            }
        }
    }
    found
}

/// The document's path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push('1');
            }
            '}' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

fn documents_problem(operation: &Value, status: &str) -> bool {
    operation["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"]
        == "#/components/schemas/Problem"
}

#[tokio::test]
async fn bodies_that_are_not_json_get_the_documented_400_and_415() -> anyhow::Result<()> {
    let (base, shutdown, _dir) = spawn("").await?;
    let client = client()?;
    let document: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let token = access_token(&client, &base).await?;
    let with_body: Vec<_> = operations(&document)
        .into_iter()
        .filter(|(_, _, operation)| operation.get("requestBody").is_some())
        .collect();
    let paths: Vec<&str> = with_body.iter().map(|(_, path, _)| path.as_str()).collect();
    for expected in [
        "/api/v1/accounts",
        "/api/v1/auth/login",
        "/api/v1/charging/start",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} takes a body: {paths:?}"
        );
    }
    for (method, path, operation) in with_body {
        let url = format!("{}{}", base.trim_end_matches("/api/v1"), concrete(&path));
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())?;
        let not_json = client
            .request(method.clone(), &url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body("{\"email\": ")
            .send()
            .await?;
        assert_eq!(
            not_json.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
        assert!(
            documents_problem(&operation, "400"),
            "{method} {path}: 400 undocumented"
        );
        let undeclared = client
            .request(method.clone(), &url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body("{}")
            .send()
            .await?;
        assert_eq!(
            undeclared.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert!(
            documents_problem(&operation, "415"),
            "{method} {path}: 415 undocumented"
        );
    }
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn every_operation_documents_the_rate_limit_that_a_client_over_it_gets() -> anyhow::Result<()>
{
    let (base, shutdown, _dir) = spawn("rate_limit_per_ip = 3\n").await?;
    let client = client()?;
    let document: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let operations = operations(&document);
    assert!(operations.len() >= 20, "{}", operations.len());
    for (method, path, operation) in operations {
        assert!(
            documents_problem(&operation, "429"),
            "{method} {path}: 429 undocumented"
        );
        assert_eq!(
            operation["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"], "integer",
            "{method} {path}"
        );
    }
    // The document was the first of three requests this client may send in the window.
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let answer = client.get(format!("{base}/locations")).send().await?;
        statuses.push(answer.status());
        last = Some(answer);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let refused = last.ok_or_else(|| anyhow::anyhow!("no answer"))?;
    assert_eq!(
        refused
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json")
    );
    let retry_after = refused
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    assert!(retry_after.is_some(), "{:?}", refused.headers());
    shutdown.cancel();
    Ok(())
}

/// The limit `key` (such as `minLength`) the document declares for `field` of `schema`.
fn limit(document: &Value, schema: &str, field: &str, key: &str) -> usize {
    let value = &document["components"]["schemas"][schema]["properties"][field][key];
    usize::try_from(value.as_u64().unwrap_or_default()).unwrap_or_default()
}

/// The fields a 422 problem names.
async fn refused_fields(response: reqwest::Response) -> anyhow::Result<Vec<String>> {
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await?;
    Ok(body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn the_declared_limits_of_request_fields_are_the_ones_the_handlers_enforce()
-> anyhow::Result<()> {
    let (base, shutdown, _dir) = spawn("").await?;
    let client = client()?;
    let document: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let example = |schema: &str, field: &str| {
        document["components"]["schemas"][schema]["properties"][field]["example"].clone()
    };

    // Sign-up: the example is a valid account; one character under the password's minimum
    // and one over the name's maximum are refused, naming the field.
    let min_password = limit(&document, "SignUpRequest", "password", "minLength");
    let max_name = limit(&document, "SignUpRequest", "name", "maxLength");
    assert_eq!((min_password, max_name), (10, 255));
    let sign_up = |email: &str, password: String, name: String| {
        client
            .post(format!("{base}/accounts"))
            .json(&json!({"email": email, "password": password, "name": name}))
            .send()
    };
    let short = sign_up("a@example.com", "x".repeat(min_password - 1), "A".into()).await?;
    assert_eq!(refused_fields(short).await?, ["password"]);
    let long = sign_up(
        "b@example.com",
        "x".repeat(min_password),
        "n".repeat(max_name + 1),
    )
    .await?;
    assert_eq!(refused_fields(long).await?, ["name"]);
    let email = example("SignUpRequest", "email");
    let password = example("SignUpRequest", "password");
    let created = client
        .post(format!("{base}/accounts"))
        .json(&json!({"email": email, "password": password, "name": example("SignUpRequest", "name")}))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty(), "{login}");

    // Cards: the example is a valid card; one character over the maximum is refused.
    let max_card = limit(&document, "AddCardRequest", "token", "maxLength");
    assert_eq!(max_card, 20);
    let add_card = |card: Value| {
        client
            .post(format!("{base}/cards"))
            .bearer_auth(&token)
            .json(&json!({"token": card, "label": example("AddCardRequest", "label")}))
            .send()
    };
    let long = add_card(json!("C".repeat(max_card + 1))).await?;
    assert_eq!(refused_fields(long).await?, ["token"]);
    let added = add_card(example("AddCardRequest", "token")).await?;
    assert_eq!(added.status(), StatusCode::CREATED);

    // Charging: an EVSE under the minimum is refused.
    let min_evse =
        document["components"]["schemas"]["StartRequest"]["properties"]["evse"]["minimum"].as_i64();
    assert_eq!(min_evse, Some(1));
    let start = client
        .post(format!("{base}/charging/start"))
        .bearer_auth(&token)
        .json(&json!({"charger": example("StartRequest", "charger"), "evse": 0}))
        .send()
        .await?;
    assert_eq!(refused_fields(start).await?, ["evse"]);

    // API keys: the example is a valid key.
    let key = client
        .post(format!("{base}/api-keys"))
        .bearer_auth(&token)
        .json(&json!({
            "name": example("CreateKeyRequest", "name"),
            "scopes": example("CreateKeyRequest", "scopes"),
        }))
        .send()
        .await?;
    assert_eq!(key.status(), StatusCode::CREATED);
    shutdown.cancel();
    Ok(())
}
