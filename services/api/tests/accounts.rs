//! Drivers' accounts against the real API server (see `support` for the two backends).

mod support;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{Answer, Backend, PASSWORD, SECRET, TestApp, on_both_backends, text};
use voltfleet_api::tokens::{AccessGrant, issue_access_token};

async fn signs_up_and_sees_itself(app: &TestApp) -> anyhow::Result<()> {
    let created = app.sign_up(" Dora@Example.com ").await?;
    assert_eq!(created["email"], "dora@example.com");
    assert_eq!(created["name"], "Dora Driver");
    assert!(created.get("password_hash").is_none());

    let duplicate = app
        .post(
            "/accounts",
            json!({"email": "DORA@example.com", "password": PASSWORD, "name": "Other"}),
            None,
        )
        .await?;
    duplicate.assert_problem(StatusCode::CONFLICT);
    assert_eq!(duplicate.fields(), ["email"]);
    assert_eq!(duplicate.body["instance"], "/api/v1/accounts");

    let anonymous = app.get("/me", None).await?;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers.contains_key(WWW_AUTHENTICATE));

    let (access, _) = app.login("dora@EXAMPLE.com", PASSWORD).await?;
    let me = app.get("/me", Some(&access)).await?;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, created);
    Ok(())
}

async fn names_every_invalid_field(app: &TestApp) -> anyhow::Result<()> {
    let empty = app.post("/accounts", json!({}), None).await?;
    empty.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.fields(), ["email", "password", "name"]);

    let bad = app
        .post(
            "/accounts",
            json!({"email": "not-an-email", "password": "short", "name": "  "}),
            None,
        )
        .await?;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), ["email", "password", "name"]);

    let same = app
        .post(
            "/accounts",
            json!({"email": "same@example.com", "password": "SAME@example.com", "name": "S"}),
            None,
        )
        .await?;
    same.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(same.fields(), ["password"]);

    let login = app.post("/auth/login", json!({"email": ""}), None).await?;
    login.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(login.fields(), ["email", "password"]);

    let broken = app
        .client
        .post(format!("{}/accounts", app.base))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"email\": ")
        .send()
        .await?;
    Answer::read(broken)
        .await?
        .assert_problem(StatusCode::BAD_REQUEST);

    let mistyped = app
        .post(
            "/accounts",
            json!({"email": ["dora@example.com"], "password": PASSWORD, "name": "Dora"}),
            None,
        )
        .await?;
    mistyped.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mistyped.fields(), ["email"]);
    let nested = app
        .post(
            "/auth/login",
            json!({"email": "dora@example.com", "password": 42}),
            None,
        )
        .await?;
    nested.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nested.fields(), ["password"]);
    assert!(
        !nested.body["errors"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("line"),
        "{:?}",
        nested.body
    );
    let trailing = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body("{\"email\": \"a@example.com\", \"password\": \"x\"} trailing")
        .send()
        .await?;
    Answer::read(trailing)
        .await?
        .assert_problem(StatusCode::BAD_REQUEST);

    let wrong_type = app
        .client
        .post(format!("{}/accounts", app.base))
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await?;
    Answer::read(wrong_type)
        .await?
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    app.get("/no-such-thing", None)
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    Ok(())
}

async fn login_failures_do_not_tell_whether_the_account_exists(
    app: &TestApp,
) -> anyhow::Result<()> {
    app.sign_up("known@example.com").await?;
    let wrong = app
        .post(
            "/auth/login",
            json!({"email": "known@example.com", "password": "not the password"}),
            None,
        )
        .await?;
    let unknown = app
        .post(
            "/auth/login",
            json!({"email": "unknown@example.com", "password": "not the password"}),
            None,
        )
        .await?;
    wrong.assert_problem(StatusCode::UNAUTHORIZED);
    let without_id = |answer: &Answer| {
        let mut body = answer.body.clone();
        body.as_object_mut().map(|body| body.remove("request_id"));
        body
    };
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(without_id(&unknown), without_id(&wrong));
    let names = |answer: &Answer| {
        let mut names: Vec<_> = answer
            .headers
            .keys()
            .map(|name| name.as_str().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&unknown), names(&wrong));
    Ok(())
}

async fn expired_forged_and_garbage_tokens_are_refused(app: &TestApp) -> anyhow::Result<()> {
    let driver = app.sign_up("tokens@example.com").await?;
    let (access, _) = app.login("tokens@example.com", PASSWORD).await?;
    assert_eq!(app.get("/me", Some(&access)).await?.status, StatusCode::OK);
    // The same session, signed with the right secret but an hour ago.
    let session_id = decode_sid(access.split('.').nth(1).unwrap_or_default());
    let grant = AccessGrant {
        driver_id: driver["id"].as_i64().unwrap_or_default(),
        session_id,
    };
    let secret = SecretString::from(SECRET.to_owned());
    let expired = issue_access_token(
        &secret,
        grant,
        chrono::Utc::now() - chrono::Duration::hours(1),
        60,
    )?;
    let other = SecretString::from("another-secret-of-more-than-thirty-two-bytes".to_owned());
    let forged = issue_access_token(&other, grant, chrono::Utc::now(), 600)?;
    let tampered = {
        let mut parts: Vec<&str> = access.split('.').collect();
        assert_eq!(parts.len(), 3);
        // Another token's claims under this token's signature.
        parts[1] = forged.split('.').nth(1).unwrap_or_default();
        parts.join(".")
    };
    for token in [expired.as_str(), &forged, &tampered, "garbage", ""] {
        app.get("/me", Some(token))
            .await?
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    Ok(())
}

/// The `sid` claim of a JWT's payload, read without a JWT library (the test checks what is
/// on the wire).
fn decode_sid(payload: &str) -> i64 {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| claims["sid"].as_i64())
        .unwrap_or_default()
}

async fn refresh_rotates_and_reuse_revokes_the_chain(app: &TestApp) -> anyhow::Result<()> {
    app.sign_up("rotate@example.com").await?;
    let (_, first) = app.login("rotate@example.com", PASSWORD).await?;
    let rotated = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert_eq!(rotated.body["token_type"], "Bearer");
    assert_eq!(rotated.body["expires_in"], 900);
    let second = text(&rotated.body, "refresh_token");
    let second_access = text(&rotated.body, "access_token");
    assert_ne!(second, first);
    assert_eq!(
        app.get("/me", Some(&second_access)).await?.status,
        StatusCode::OK
    );

    let rotated_again = app
        .post("/auth/refresh", json!({"refresh_token": second}), None)
        .await?;
    assert_eq!(rotated_again.status, StatusCode::OK);
    let third = text(&rotated_again.body, "refresh_token");
    let third_access = text(&rotated_again.body, "access_token");

    // The first token again, its successor used since: refused, and the whole chain with it.
    app.post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post("/auth/refresh", json!({"refresh_token": third}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    for access in [&second_access, &third_access] {
        app.get("/me", Some(access))
            .await?
            .assert_problem(StatusCode::UNAUTHORIZED);
    }

    // Another login is another chain, untouched.
    let (access, refresh) = app.login("rotate@example.com", PASSWORD).await?;
    assert_eq!(app.get("/me", Some(&access)).await?.status, StatusCode::OK);
    let answer = app
        .post("/auth/refresh", json!({"refresh_token": refresh}), None)
        .await?;
    assert_eq!(answer.status, StatusCode::OK);
    app.post("/auth/refresh", json!({"refresh_token": "made-up"}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    Ok(())
}

/// A client that never got a rotation's answer presents the old token again: within the
/// grace, and with the lost successor unused, it gets a new pair once; the lost successor is
/// then a reuse like any other.
async fn a_lost_rotation_is_reissued_within_the_grace(app: &TestApp) -> anyhow::Result<()> {
    app.sign_up("lost@example.com").await?;
    let (_, first) = app.login("lost@example.com", PASSWORD).await?;
    let lost = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    assert_eq!(lost.status, StatusCode::OK);
    let lost = text(&lost.body, "refresh_token");

    let retried = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    let kept = text(&retried.body, "refresh_token");
    assert_ne!(kept, lost);
    let next = app
        .post("/auth/refresh", json!({"refresh_token": kept}), None)
        .await?;
    assert_eq!(next.status, StatusCode::OK, "the reissued token works");
    let next_access = text(&next.body, "access_token");
    let next = text(&next.body, "refresh_token");

    // The first token a third time: its successor has been used now.
    app.post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post("/auth/refresh", json!({"refresh_token": next}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.get("/me", Some(&next_access))
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);

    // The lost successor, should it surface after all, is a reuse too.
    let (_, first) = app.login("lost@example.com", PASSWORD).await?;
    let lost = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    let lost = text(&lost.body, "refresh_token");
    let retried = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    let kept = text(&retried.body, "refresh_token");
    app.post("/auth/refresh", json!({"refresh_token": lost}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post("/auth/refresh", json!({"refresh_token": kept}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_any_second_use_is_a_reuse() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Backend::Sqlite, "refresh_reuse_grace = \"0s\"\n").await?;
    app.sign_up("strict@example.com").await?;
    let (_, first) = app.login("strict@example.com", PASSWORD).await?;
    let rotated = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?;
    let second = text(&rotated.body, "refresh_token");
    app.post("/auth/refresh", json!({"refresh_token": first}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post("/auth/refresh", json!({"refresh_token": second}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.stop().await
}

async fn logout_revokes_the_session(app: &TestApp) -> anyhow::Result<()> {
    app.sign_up("logout@example.com").await?;
    let (access, refresh) = app.login("logout@example.com", PASSWORD).await?;
    let (other_access, _) = app.login("logout@example.com", PASSWORD).await?;
    let answer = app.post("/auth/logout", json!({}), Some(&access)).await?;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    app.get("/me", Some(&access))
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post("/auth/refresh", json!({"refresh_token": refresh}), None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/me", Some(&other_access)).await?.status,
        StatusCode::OK
    );
    Ok(())
}

async fn a_password_change_revokes_the_other_sessions(app: &TestApp) -> anyhow::Result<()> {
    let email = "change@example.com";
    app.sign_up(email).await?;
    let (mine, _) = app.login(email, PASSWORD).await?;
    let (theirs, their_refresh) = app.login(email, PASSWORD).await?;
    let new_password = "a much better passphrase";

    let wrong = app
        .post(
            "/account/password",
            json!({"current_password": "not it at all", "new_password": new_password}),
            Some(&mine),
        )
        .await?;
    wrong.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.fields(), ["current_password"]);
    let weak = app
        .post(
            "/account/password",
            json!({"current_password": PASSWORD, "new_password": email}),
            Some(&mine),
        )
        .await?;
    assert_eq!(weak.fields(), ["new_password"]);
    app.post(
        "/account/password",
        json!({"current_password": PASSWORD, "new_password": new_password}),
        None,
    )
    .await?
    .assert_problem(StatusCode::UNAUTHORIZED);

    let changed = app
        .post(
            "/account/password",
            json!({"current_password": PASSWORD, "new_password": new_password}),
            Some(&mine),
        )
        .await?;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    assert_eq!(app.get("/me", Some(&mine)).await?.status, StatusCode::OK);
    app.get("/me", Some(&theirs))
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    app.post(
        "/auth/refresh",
        json!({"refresh_token": their_refresh}),
        None,
    )
    .await?
    .assert_problem(StatusCode::UNAUTHORIZED);
    app.post(
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await?
    .assert_problem(StatusCode::UNAUTHORIZED);
    app.login(email, new_password).await?;
    Ok(())
}

async fn logins_are_throttled_per_account_and_per_address(app: &TestApp) -> anyhow::Result<()> {
    app.sign_up("victim@example.com").await?;
    app.sign_up("bystander@example.com").await?;
    let attempt = |email: &str, password: &str, forwarded: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/auth/login", app.base))
            .json(&json!({"email": email, "password": password}));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        async move { Answer::read(request.send().await?).await }
    };
    // The test sets 3 failures per account and 6 per address.
    for _ in 0..3 {
        attempt("victim@example.com", "wrong password", None)
            .await?
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    let throttled = attempt("victim@example.com", PASSWORD, None).await?;
    throttled.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        throttled
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("900")
    );
    // Another account from the same address still signs in.
    attempt("bystander@example.com", PASSWORD, None).await?;
    assert_eq!(
        attempt("bystander@example.com", PASSWORD, None)
            .await?
            .status,
        StatusCode::OK
    );
    // Failures on accounts that do not exist count for the address all the same.
    for email in [
        "nobody1@example.com",
        "nobody2@example.com",
        "nobody3@example.com",
    ] {
        attempt(email, "wrong password", None)
            .await?
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    attempt("bystander@example.com", PASSWORD, None)
        .await?
        .assert_problem(StatusCode::TOO_MANY_REQUESTS);
    // The peer is not a trusted proxy, so a forwarded address changes nothing.
    attempt("bystander@example.com", PASSWORD, Some("203.0.113.9"))
        .await?
        .assert_problem(StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

async fn a_driver_never_sees_another_drivers_account(app: &TestApp) -> anyhow::Result<()> {
    let alice = app.sign_up("alice@example.com").await?;
    let bob = app.sign_up("bob@example.com").await?;
    let (alice_access, _) = app.login("alice@example.com", PASSWORD).await?;
    let (bob_access, bob_refresh) = app.login("bob@example.com", PASSWORD).await?;
    assert_eq!(app.get("/me", Some(&alice_access)).await?.body, alice);
    assert_eq!(app.get("/me", Some(&bob_access)).await?.body, bob);
    // Alice's session under Bob's id, signed properly: the session is not Bob's.
    let alice_sid = decode_sid(alice_access.split('.').nth(1).unwrap_or_default());
    let secret = SecretString::from(SECRET.to_owned());
    let crossed = issue_access_token(
        &secret,
        AccessGrant {
            driver_id: bob["id"].as_i64().unwrap_or_default(),
            session_id: alice_sid,
        },
        chrono::Utc::now(),
        600,
    )?;
    app.get("/me", Some(&crossed))
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    // Alice logging out leaves Bob signed in.
    app.post("/auth/logout", json!({}), Some(&alice_access))
        .await?;
    assert_eq!(
        app.get("/me", Some(&bob_access)).await?.status,
        StatusCode::OK
    );
    let refreshed = app
        .post("/auth/refresh", json!({"refresh_token": bob_refresh}), None)
        .await?;
    let access = text(&refreshed.body, "access_token");
    assert_eq!(app.get("/me", Some(&access)).await?.body, bob);
    Ok(())
}

async fn the_openapi_document_lists_every_route(app: &TestApp) -> anyhow::Result<()> {
    let answer = app.get("/openapi.json", None).await?;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.body;
    assert!(
        text(&doc, "openapi").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/api/v1/accounts", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/account/password", "post"),
        ("/api/v1/me", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let login = &doc["paths"]["/api/v1/auth/login"]["post"];
    assert!(login["requestBody"].is_object());
    assert!(login["responses"]["429"]["content"]["application/problem+json"].is_object());
    for schema in [
        "Problem",
        "FieldError",
        "SignUpRequest",
        "LoginRequest",
        "RefreshRequest",
        "PasswordChangeRequest",
        "TokenResponse",
        "DriverView",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    assert!(doc["components"]["schemas"]["Problem"]["properties"]["type"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    Ok(())
}

/// A flood of logins waits for the few password-hashing slots; past the wait it is a 503,
/// not every core busy with argon2.
async fn password_checks_are_bounded(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        "password_hash_concurrency = 1\npassword_hash_wait = \"1ms\"\nlogin_failures_per_ip = 100\nlogin_failures_per_account = 100\n",
    )
    .await?;
    app.sign_up("flood@example.com").await?;
    let attempts = (0..12).map(|_| {
        app.post(
            "/auth/login",
            json!({"email": "flood@example.com", "password": "not the password"}),
            None,
        )
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut statuses = Vec::new();
    for answer in answers {
        let answer = answer?;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        }
        statuses.push(answer.status);
    }
    assert!(
        statuses.iter().all(
            |status| [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(status)
        ),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "12 logins at once with one slot and a 1 ms wait: {statuses:?}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_are_bounded_on_sqlite() -> anyhow::Result<()> {
    password_checks_are_bounded(Backend::Sqlite).await
}

on_both_backends!(
    signs_up_and_sees_itself,
    names_every_invalid_field,
    login_failures_do_not_tell_whether_the_account_exists,
    expired_forged_and_garbage_tokens_are_refused,
    refresh_rotates_and_reuse_revokes_the_chain,
    a_lost_rotation_is_reissued_within_the_grace,
    logout_revokes_the_session,
    a_password_change_revokes_the_other_sessions,
    logins_are_throttled_per_account_and_per_address,
    a_driver_never_sees_another_drivers_account,
    the_openapi_document_lists_every_route,
);
