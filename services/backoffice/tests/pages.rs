//! The Back Office's pages against the real server (see `support` for the two backends):
//! sign-in and its throttle, sessions, CSRF, roles, escaping, the charger list.

mod support;

use reqwest::header::{ORIGIN, REFERER};
use reqwest::{Method, StatusCode};
use support::{Backend, Browser, PASSWORD, TestApp, on_both_backends};
use voltfleet_backoffice::commands::COMMANDS;
use voltfleet_core::domain::{AuditOutcome, ChargePointId, RegistrationStatus, Role};
use voltfleet_core::ocpp::events::{ChargerEvent, STATUS_TOPIC};
use voltfleet_core::storage::{AuditEntry, BootInfo, NewChargePoint};

async fn audit(app: &TestApp) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(app.ctx.db.audit().recent(500).await?)
}

async fn charger(app: &TestApp, identity: &str, vendor: &str, model: &str) -> anyhow::Result<i64> {
    let id = app
        .ctx
        .db
        .charge_points()
        .create(&NewChargePoint {
            identity: identity.parse::<ChargePointId>()?,
            location_id: None,
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    app.ctx
        .db
        .charge_points()
        .record_boot(
            id,
            &BootInfo {
                vendor: vendor.into(),
                model: model.into(),
                serial_number: None,
                firmware_version: Some("1.0<b>".into()),
                ocpp_version: None,
                charge_box_serial_number: None,
                iccid: None,
                imsi: None,
                meter_type: None,
                meter_serial_number: None,
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(id)
}

async fn signs_in_and_is_throttled(app: &TestApp) -> anyhow::Result<()> {
    app.operator("ada@example.com", Role::Admin).await?;
    let anonymous = app.get("/backoffice/", None).await?;
    anonymous.assert_redirect("/backoffice/login");

    let form = app.get("/backoffice/login", None).await?;
    let line = form
        .set_cookie_line("vf_bo_login")
        .expect("the form's cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/backoffice"] {
        assert!(line.contains(attribute), "{line}");
    }

    let empty = app.try_login("", "", None).await?;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .body
            .contains("id=\"email-error\">Enter your email address."),
        "{}",
        empty.body
    );
    assert!(
        empty
            .body
            .contains("id=\"password-error\">Enter your password.")
    );

    let wrong = app.try_login("ada@example.com", "not it", None).await?;
    let unknown = app.try_login("nobody@example.com", PASSWORD, None).await?;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("Wrong email or password."),
            "{}",
            page.body
        );
        assert!(page.set_cookie("vf_bo_session").is_none());
    }

    let ok = app.try_login("ADA@example.com", PASSWORD, None).await?;
    ok.assert_redirect("/backoffice/");
    let line = ok
        .set_cookie_line("vf_bo_session")
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/backoffice",
        "Max-Age=",
    ] {
        assert!(line.contains(attribute), "{line}");
    }
    let token = ok.set_cookie("vf_bo_session").expect("a session");
    assert_eq!(token.len(), 64);
    let hash = voltfleet_backoffice::session::token_hash(&token);
    let stored = app
        .ctx
        .db
        .operator_sessions()
        .find_by_token_hash(&hash)
        .await?;
    assert!(stored.is_some(), "stored by its hash");
    assert!(
        app.ctx
            .db
            .operator_sessions()
            .find_by_token_hash(&token)
            .await?
            .is_none(),
        "never in the clear"
    );

    // Two more failures reach the per-account limit of 3: then even the right password waits.
    for _ in 0..2 {
        let page = app
            .try_login("ada@example.com", "still not it", None)
            .await?;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = app.try_login("ada@example.com", PASSWORD, None).await?;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.header("retry-after").is_some());
    assert!(
        throttled.body.contains("Too many failed sign-ins."),
        "{}",
        throttled.body
    );
    assert!(throttled.set_cookie("vf_bo_session").is_none());

    let entries = audit(app).await?;
    let logins: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "operator.login")
        .collect();
    assert_eq!(
        logins
            .iter()
            .filter(|e| e.outcome == AuditOutcome::Success)
            .count(),
        1
    );
    assert_eq!(
        logins
            .iter()
            .filter(|e| e.outcome == AuditOutcome::Denied)
            .count(),
        5
    );
    Ok(())
}

async fn a_new_session_on_every_sign_in(app: &TestApp) -> anyhow::Result<()> {
    app.operator("olga@example.com", Role::Operator).await?;
    let first = app.login("olga@example.com").await?;
    // Signing in again from a browser that holds a session (or one planted in it) makes a new
    // id, and the old one stops working.
    let again = app
        .try_login("olga@example.com", PASSWORD, Some(&first.cookie))
        .await?;
    again.assert_redirect("/backoffice/");
    let second = format!(
        "vf_bo_session={}",
        again.set_cookie("vf_bo_session").expect("a new session")
    );
    assert_ne!(second, first.cookie);
    app.get("/backoffice/", Some(&first))
        .await?
        .assert_redirect("/backoffice/login");
    let second = Browser {
        cookie: second,
        csrf: String::new(),
    };
    let home = app.get("/backoffice/", Some(&second)).await?;
    assert_eq!(home.status, StatusCode::OK);
    let second = Browser {
        csrf: home.csrf().expect("a token"),
        ..second
    };
    assert_ne!(
        second.csrf, first.csrf,
        "each session has its own CSRF token"
    );

    // A made-up id is no session.
    let forged = Browser {
        cookie: format!("vf_bo_session={}", "a".repeat(64)),
        csrf: String::new(),
    };
    app.get("/backoffice/", Some(&forged))
        .await?
        .assert_redirect("/backoffice/login");

    let out = app.post("/backoffice/logout", &second, &[]).await?;
    out.assert_redirect("/backoffice/login");
    assert!(
        out.set_cookie_line("vf_bo_session")
            .is_some_and(|line| line.contains("Max-Age=0"))
    );
    app.get("/backoffice/", Some(&second))
        .await?
        .assert_redirect("/backoffice/login");
    Ok(())
}

async fn unsafe_requests_need_the_token_and_the_origin(app: &TestApp) -> anyhow::Result<()> {
    app.operator("olga@example.com", Role::Operator).await?;
    charger(app, "CP-1", "V", "M").await?;
    let browser = app.login("olga@example.com").await?;
    let path = "/backoffice/charge-points/CP-1/commands/clear-cache";
    let send = |token: Option<&str>, origin: Option<&str>, referer: Option<&str>| {
        let mut request = app.request(Method::POST, path, Some(&browser.cookie));
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(referer) = referer {
            request = request.header(REFERER, referer);
        }
        match token {
            Some(token) => request.form(&[("_csrf", token)]),
            None => request.form(&[("x", "1")]),
        }
    };
    let own = app.origin.as_str();
    for (label, request) in [
        ("no token", send(None, Some(own), None)),
        (
            "a wrong token",
            send(Some(&"0".repeat(64)), Some(own), None),
        ),
        (
            "another site",
            send(Some(&browser.csrf), Some("http://evil.example"), None),
        ),
        ("no origin at all", send(Some(&browser.csrf), None, None)),
        (
            "a referer from elsewhere",
            send(Some(&browser.csrf), None, Some("http://evil.example/page")),
        ),
    ] {
        let page = app.send(request).await?;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{label}: {}", page.body);
    }
    // The login form checks its own cookie's token too.
    let page = app
        .send(
            app.request(Method::POST, "/backoffice/login", Some("vf_bo_login=abc"))
                .header(ORIGIN, own)
                .form(&[
                    ("_csrf", "abd"),
                    ("email", "olga@example.com"),
                    ("password", PASSWORD),
                ]),
        )
        .await?;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // With both, from a page's Referer, it goes through (the charger is offline).
    let page = app
        .send(
            app.request(Method::POST, path, Some(&browser.cookie))
                .header(REFERER, format!("{own}/backoffice/charge-points/CP-1"))
                .form(&[("_csrf", browser.csrf.as_str())]),
        )
        .await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("is not connected"), "{}", page.body);
    let refused = audit(app)
        .await?
        .into_iter()
        .filter(|e| e.action == "csrf.refused")
        .count();
    assert_eq!(
        refused, 2,
        "the token refusals of a signed-in operator are audited"
    );
    Ok(())
}

async fn a_viewer_cannot_command_even_by_crafting_the_request(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    app.operator("olga@example.com", Role::Operator).await?;
    charger(app, "CP-1", "V", "M").await?;
    let viewer = app.login("vera@example.com").await?;
    let detail = app
        .get("/backoffice/charge-points/CP-1", Some(&viewer))
        .await?;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Your role is read-only"));
    assert!(
        !detail.body.contains("/commands/"),
        "no command forms for a viewer"
    );
    let fields = [
        ("connector_id", "1"),
        ("type", "Soft"),
        ("id_tag", "TAG"),
        ("transaction_id", "1"),
        ("key", "K"),
        ("value", "V"),
    ];
    for spec in COMMANDS {
        let path = format!("/backoffice/charge-points/CP-1/commands/{}", spec.slug);
        let page = app.post(&path, &viewer, &fields).await?;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "{}: {}",
            spec.slug,
            page.body
        );
        assert!(
            page.body.contains("needs the operator role"),
            "{}",
            page.body
        );
    }
    for path in [
        "/backoffice/charge-points/CP-1/approve",
        "/backoffice/charge-points/CP-1/password",
    ] {
        let page = app
            .post(path, &viewer, &[("password", "long enough pw")])
            .await?;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    let operator = app.login("olga@example.com").await?;
    let page = app
        .post(
            "/backoffice/charge-points/CP-1/password",
            &operator,
            &[("password", "long-enough-pw")],
        )
        .await?;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "charger passwords are for admins"
    );
    let denied: Vec<_> = audit(app)
        .await?
        .into_iter()
        .filter(|e| e.action == "access.denied" && e.outcome == AuditOutcome::Denied)
        .collect();
    assert_eq!(denied.len(), COMMANDS.len() + 3);
    assert!(denied.iter().any(|e| e.actor == "operator:vera@example.com"
        && e.target == "/backoffice/charge-points/CP-1/commands/reset"));
    Ok(())
}

async fn charger_strings_are_shown_as_text(app: &TestApp) -> anyhow::Result<()> {
    app.operator("ada@example.com", Role::Admin).await?;
    charger(
        app,
        "CP-<i>",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
    )
    .await?;
    let browser = app.login("ada@example.com").await?;
    let list = app.get("/backoffice/charge-points", Some(&browser)).await?;
    let detail = app
        .get("/backoffice/charge-points/CP-%3Ci%3E", Some(&browser))
        .await?;
    for page in [&list, &detail] {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("<script>alert"), "{}", page.body);
        assert!(!page.body.contains("<img src=x"), "{}", page.body);
        assert!(!page.body.contains("<i>"), "{}", page.body);
        assert!(!page.body.contains("1.0<b>"), "{}", page.body);
    }
    assert!(
        list.body
            .contains("href=\"/backoffice/charge-points/CP-%3Ci%3E\""),
        "{}",
        list.body
    );
    let csp = detail.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(detail.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(detail.header("x-frame-options"), Some("DENY"));
    assert_eq!(detail.header("cache-control"), Some("no-store"));
    Ok(())
}

async fn the_list_pages_and_filters(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    for (identity, vendor) in [
        ("CP-1", "Alfen"),
        ("CP-2", "ABB"),
        ("CP-3", "Alfen"),
        ("CP-4", "Kempower"),
        ("CP-5", "Alfen"),
    ] {
        charger(app, identity, vendor, "Model").await?;
    }
    let pending = charger(app, "NEW-1", "Alfen", "Model").await?;
    app.ctx
        .db
        .charge_points()
        .set_registration_status(pending, RegistrationStatus::Pending)
        .await?;
    let browser = app.login("vera@example.com").await?;
    let rows = |body: &str| -> Vec<String> {
        body.match_indices("<td><a href=\"/backoffice/charge-points/")
            .map(|(at, marker)| {
                let rest = &body[at + marker.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_owned()
            })
            .collect()
    };
    let first = app.get("/backoffice/charge-points", Some(&browser)).await?;
    assert_eq!(rows(&first.body), ["CP-1", "CP-2"]);
    assert!(
        first.body.contains("6 charge points, page 1 of 3"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains("href=\"/backoffice/charge-points?page=2\" rel=\"next\"")
    );
    let third = app
        .get("/backoffice/charge-points?page=3", Some(&browser))
        .await?;
    assert_eq!(rows(&third.body), ["CP-5", "NEW-1"]);
    assert!(!third.body.contains("rel=\"next\""));

    let alfen = app
        .get("/backoffice/charge-points?q=alfen", Some(&browser))
        .await?;
    assert_eq!(rows(&alfen.body), ["CP-1", "CP-3"]);
    assert!(
        alfen
            .body
            .contains("href=\"/backoffice/charge-points?q=alfen&#38;page=2\""),
        "{}",
        alfen.body
    );
    let page2 = app
        .get("/backoffice/charge-points?q=alfen&page=2", Some(&browser))
        .await?;
    assert_eq!(rows(&page2.body), ["CP-5", "NEW-1"]);
    let pending = app
        .get(
            "/backoffice/charge-points?registration=Pending",
            Some(&browser),
        )
        .await?;
    assert_eq!(rows(&pending.body), ["NEW-1"]);
    let online = app
        .get("/backoffice/charge-points?online=yes", Some(&browser))
        .await?;
    assert_eq!(
        rows(&online.body),
        Vec::<String>::new(),
        "nothing is connected"
    );
    let offline = app
        .get("/backoffice/charge-points?online=no&page=3", Some(&browser))
        .await?;
    assert_eq!(rows(&offline.body), ["CP-5", "NEW-1"]);

    let bad = app
        .get(
            "/backoffice/charge-points?status=Broken&registration=Maybe&page=x",
            Some(&browser),
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("id=\"status-error\">“Broken” is not one of the choices."),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("id=\"registration-error\">“Maybe” is not one of the choices.")
    );
    Ok(())
}

async fn commands_are_checked_sent_and_audited(app: &TestApp) -> anyhow::Result<()> {
    app.operator("olga@example.com", Role::Operator).await?;
    charger(app, "CP-1", "V", "M").await?;
    let browser = app.login("olga@example.com").await?;
    let bad = app
        .post(
            "/backoffice/charge-points/CP-1/commands/unlock-connector",
            &browser,
            &[("connector_id", "zero")],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("id=\"unlock-connector-connector_id-error\">“zero” is not a whole number."),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"zero\""),
        "what was typed stays in the field"
    );
    let offline = app
        .post(
            "/backoffice/charge-points/CP-1/commands/reset",
            &browser,
            &[("type", "Soft")],
        )
        .await?;
    assert_eq!(offline.status, StatusCode::OK);
    assert!(
        offline.body.contains("class=\"outcome error\""),
        "{}",
        offline.body
    );
    assert!(
        offline.body.contains("charger CP-1 is not connected"),
        "{}",
        offline.body
    );
    let missing = app
        .post(
            "/backoffice/charge-points/NOPE/commands/reset",
            &browser,
            &[("type", "Soft")],
        )
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let entries = audit(app).await?;
    let reset = entries
        .iter()
        .find(|e| e.action == "charge_point.command.Reset")
        .expect("the reset is audited");
    assert_eq!(reset.outcome, AuditOutcome::Failure);
    assert_eq!(reset.target, "charge_point:CP-1");
    assert_eq!(reset.actor, "operator:olga@example.com");
    assert_eq!(reset.details.0["request"]["type"], "Soft");
    assert!(
        entries
            .iter()
            .any(|e| e.action == "charge_point.command.UnlockConnector"
                && e.outcome == AuditOutcome::Denied)
    );

    // Approving a pending charger.
    let pending = charger(app, "NEW-1", "V", "M").await?;
    app.ctx
        .db
        .charge_points()
        .set_registration_status(pending, RegistrationStatus::Pending)
        .await?;
    let approved = app
        .post("/backoffice/charge-points/NEW-1/approve", &browser, &[])
        .await?;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(
        app.ctx
            .db
            .charge_points()
            .get(pending)
            .await?
            .registration_status,
        RegistrationStatus::Accepted
    );
    Ok(())
}

async fn admins_set_charger_passwords(app: &TestApp) -> anyhow::Result<()> {
    app.operator("ada@example.com", Role::Admin).await?;
    let id = charger(app, "CP-1", "V", "M").await?;
    let browser = app.login("ada@example.com").await?;
    let short = app
        .post(
            "/backoffice/charge-points/CP-1/password",
            &browser,
            &[("password", "short")],
        )
        .await?;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short
            .body
            .contains("id=\"ocpp-password-error\">Use at least 8 characters"),
        "{}",
        short.body
    );
    let set = app
        .post(
            "/backoffice/charge-points/CP-1/password",
            &browser,
            &[("password", "a-new-charger-pw")],
        )
        .await?;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let hash = app
        .ctx
        .db
        .charge_points()
        .get(id)
        .await?
        .ocpp_password_hash
        .expect("a hash");
    assert!(voltfleet_core::credentials::verify_password(
        "a-new-charger-pw",
        &hash
    ));
    assert!(
        !audit(app)
            .await?
            .iter()
            .any(|e| e.details.0.to_string().contains("a-new-charger-pw"))
    );
    Ok(())
}

async fn the_dashboard_counts_and_assets_are_cached(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    charger(app, "CP-1", "V", "M").await?;
    charger(app, "CP-2", "V", "M").await?;
    let browser = app.login("vera@example.com").await?;
    let page = app.get("/backoffice/", Some(&browser)).await?;
    assert!(
        page.body.contains("data-figure=\"offline\">2<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-figure=\"online\">0<"));
    let json = app
        .get("/backoffice/dashboard.json", Some(&browser))
        .await?;
    let figures: serde_json::Value = serde_json::from_str(&json.body)?;
    assert_eq!(figures["offline"], 2);
    assert_eq!(figures["active_sessions"], 0);
    let css = voltfleet_backoffice::assets::css_url();
    assert!(page.body.contains(css));
    let asset = app.get(css, None).await?;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        asset.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    let gone = app
        .get("/backoffice/static/backoffice.0000.css", None)
        .await?;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    // The live stream relays what the OCPP service publishes.
    let mut stream = app
        .request(Method::GET, "/backoffice/events", Some(&browser.cookie))
        .send()
        .await?;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let event = ChargerEvent::StatusChanged {
        charge_point: "CP-2".parse()?,
        connector_id: 1,
        status: "Faulted".into(),
        error_code: "GroundFailure".into(),
        at: chrono::Utc::now(),
    };
    app.ctx
        .shared
        .bus
        .publish(STATUS_TOPIC, &serde_json::to_vec(&event)?)
        .await?;
    let received = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut text = String::new();
        while let Some(chunk) = stream.chunk().await? {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("GroundFailure") {
                return anyhow::Ok(text);
            }
        }
        anyhow::bail!("the stream ended: {text}")
    })
    .await??;
    assert!(received.contains("event: charger"), "{received}");
    assert!(received.contains("\"charge_point\":\"CP-2\""), "{received}");
    let anonymous = app.get("/backoffice/events", None).await?;
    anonymous.assert_redirect("/backoffice/login");
    Ok(())
}

on_both_backends!(
    signs_in_and_is_throttled,
    a_new_session_on_every_sign_in,
    unsafe_requests_need_the_token_and_the_origin,
    a_viewer_cannot_command_even_by_crafting_the_request,
    charger_strings_are_shown_as_text,
    the_list_pages_and_filters,
    commands_are_checked_sent_and_audited,
    admins_set_charger_passwords,
    the_dashboard_counts_and_assets_are_cached,
);
