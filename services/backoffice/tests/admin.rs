//! The admins' pages against the real server (see `support` for the two backends): operators
//! and their roles, the audit log.

mod support;

use reqwest::StatusCode;
use support::{Backend, PASSWORD, TestApp, on_both_backends};
use voltfleet_core::domain::Role;

async fn only_admins_reach_the_admin_pages(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    app.operator("olga@example.com", Role::Operator).await?;
    let ada = app.operator("ada@example.com", Role::Admin).await?;
    for email in ["vera@example.com", "olga@example.com"] {
        let browser = app.login(email).await?;
        let home = app.get("/backoffice/", Some(&browser)).await?;
        assert!(
            !home.body.contains("href=\"/backoffice/operators\""),
            "no admin links for {email}"
        );
        for path in ["/backoffice/operators", "/backoffice/audit"] {
            let page = app.get(path, Some(&browser)).await?;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{email} {path}");
        }
        for (path, fields) in [
            (
                "/backoffice/operators".to_owned(),
                vec![
                    ("email", "x@example.com"),
                    ("display_name", "X"),
                    ("role", "admin"),
                    ("password", "a long password"),
                ],
            ),
            (
                format!("/backoffice/operators/{ada}/role"),
                vec![("role", "viewer")],
            ),
            (format!("/backoffice/operators/{ada}/disable"), vec![]),
        ] {
            let page = app.post(&path, &browser, &fields).await?;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{email} {path}");
        }
    }
    assert!(
        app.ctx
            .db
            .operators()
            .find_by_email("x@example.com")
            .await?
            .is_none()
    );
    let ada_now = app.ctx.db.operators().get(ada).await?;
    assert_eq!(ada_now.role, Role::Admin);
    assert!(!ada_now.disabled);
    Ok(())
}

async fn admins_manage_operators(app: &TestApp) -> anyhow::Result<()> {
    let ada = app.operator("ada@example.com", Role::Admin).await?;
    let admin = app.login("ada@example.com").await?;
    let page = app.get("/backoffice/operators", Some(&admin)).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada@example.com"));

    let bad = app
        .post(
            "/backoffice/operators",
            &admin,
            &[
                ("email", "not an email"),
                ("display_name", ""),
                ("role", "root"),
                ("password", "short"),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (field, message) in [
        ("email", "Enter an email address, such as ops@example.com."),
        ("display_name", "This is required."),
        ("role", "“root” is not one of the choices."),
        ("password", "Use at least 12 characters."),
    ] {
        assert!(
            bad.body
                .contains(&format!("id=\"new-{field}-error\">{message}")),
            "{field}: {}",
            bad.body
        );
    }
    assert!(
        bad.body.contains("value=\"not an email\""),
        "what was typed stays"
    );
    assert!(!bad.body.contains("short"), "the password is never echoed");

    let created = app
        .post(
            "/backoffice/operators",
            &admin,
            &[
                ("email", "Vera@Example.com"),
                ("display_name", "Vera <b>Viewer</b>"),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(
        created.body.contains("Vera &#60;b&#62;Viewer&#60;/b&#62;"),
        "{}",
        created.body
    );
    let again = app
        .post(
            "/backoffice/operators",
            &admin,
            &[
                ("email", "vera@example.com"),
                ("display_name", "Vera"),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again
            .body
            .contains("An operator with this email exists already.")
    );

    let vera = app
        .ctx
        .db
        .operators()
        .find_by_email("vera@example.com")
        .await?
        .expect("created");
    let viewer = app.login("vera@example.com").await?;
    let promoted = app
        .post(
            &format!("/backoffice/operators/{}/role", vera.id),
            &admin,
            &[("role", "operator")],
        )
        .await?;
    assert_eq!(promoted.status, StatusCode::OK);
    // An operator still has no admin page.
    let detail = app.get("/backoffice/audit", Some(&viewer)).await?;
    assert_eq!(detail.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.ctx.db.operators().get(vera.id).await?.role,
        Role::Operator
    );

    let own = app
        .post(
            &format!("/backoffice/operators/{ada}/role"),
            &admin,
            &[("role", "viewer")],
        )
        .await?;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert!(own.body.contains("You cannot change your own role"));
    let own = app
        .post(&format!("/backoffice/operators/{ada}/disable"), &admin, &[])
        .await?;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert_eq!(app.ctx.db.operators().get(ada).await?.role, Role::Admin);

    let disabled = app
        .post(
            &format!("/backoffice/operators/{}/disable", vera.id),
            &admin,
            &[],
        )
        .await?;
    assert_eq!(disabled.status, StatusCode::OK);
    assert!(
        disabled.body.contains("1 session(s) ended"),
        "{}",
        disabled.body
    );
    app.get("/backoffice/", Some(&viewer))
        .await?
        .assert_redirect("/backoffice/login");
    let refused = app.try_login("vera@example.com", PASSWORD, None).await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let enabled = app
        .post(
            &format!("/backoffice/operators/{}/enable", vera.id),
            &admin,
            &[],
        )
        .await?;
    assert_eq!(enabled.status, StatusCode::OK);
    app.login("vera@example.com").await?;
    let missing = app
        .post("/backoffice/operators/999999/disable", &admin, &[])
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    Ok(())
}

async fn the_audit_log_lists_filters_and_escapes(app: &TestApp) -> anyhow::Result<()> {
    app.operator("ada@example.com", Role::Admin).await?;
    let failed = app.try_login("<script>@example.com", "wrong", None).await?;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let admin = app.login("ada@example.com").await?;
    let page = app.get("/backoffice/audit", Some(&admin)).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("operator:&#60;script&#62;@example.com"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>@"), "{}", page.body);
    assert!(page.body.contains("2 entries"), "{}", page.body);
    let denied = app
        .get("/backoffice/audit?outcome=denied", Some(&admin))
        .await?;
    assert!(denied.body.contains("1 entry"), "{}", denied.body);
    assert!(denied.body.contains("wrong email or password"));
    let by_actor = app
        .get("/backoffice/audit?actor=ada%40", Some(&admin))
        .await?;
    assert!(by_actor.body.contains("1 entry"), "{}", by_actor.body);
    let bad = app
        .get("/backoffice/audit?outcome=maybe", Some(&admin))
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("id=\"audit-outcome-error\">“maybe” is not one of the choices.")
    );
    Ok(())
}

async fn admins_make_and_revoke_api_keys(app: &TestApp) -> anyhow::Result<()> {
    app.operator("ada@example.com", Role::Admin).await?;
    app.operator("olga@example.com", Role::Operator).await?;
    let admin = app.login("ada@example.com").await?;
    let bad = app
        .post(
            "/backoffice/api-keys",
            &admin,
            &[("name", ""), ("scope", "charging")],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"key-name-error\">This is required."));
    assert!(
        bad.body
            .contains("“charging” is not a scope an operator key can have.")
    );
    let made = app
        .post(
            "/backoffice/api-keys",
            &admin,
            &[("name", "Map <widget>"), ("scope", "locations:read")],
        )
        .await?;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let marker = "<pre class=\"answer\" data-new-key>";
    let start = made.body.find(marker).expect("the key is shown") + marker.len();
    let plain = &made.body[start..start + made.body[start..].find('<').unwrap_or(0)];
    let key = voltfleet_core::credentials::ApiKey::parse(plain)?;
    let stored = app
        .ctx
        .db
        .api_keys()
        .find_by_prefix(key.prefix())
        .await?
        .expect("stored by its prefix");
    assert!(key.matches(&stored.key_hash));
    assert_ne!(stored.key_hash, plain, "only the hash is kept");
    assert_eq!(stored.scopes, "locations:read");
    assert!(made.body.contains("Map &#60;widget&#62;"));
    let listed = app.get("/backoffice/api-keys", Some(&admin)).await?;
    assert!(!listed.body.contains(plain), "shown once only");

    let operator = app.login("olga@example.com").await?;
    for (path, fields) in [
        (
            "/backoffice/api-keys".to_owned(),
            vec![("name", "x"), ("scope", "locations:read")],
        ),
        (format!("/backoffice/api-keys/{}/revoke", stored.id), vec![]),
    ] {
        let page = app.post(&path, &operator, &fields).await?;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        app.get("/backoffice/api-keys", Some(&operator))
            .await?
            .status,
        StatusCode::FORBIDDEN
    );
    let revoked = app
        .post(
            &format!("/backoffice/api-keys/{}/revoke", stored.id),
            &admin,
            &[],
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body.contains("no longer works"));
    assert!(
        app.ctx
            .db
            .api_keys()
            .find_by_prefix(key.prefix())
            .await?
            .expect("kept")
            .revoked_at
            .is_some()
    );
    let missing = app
        .post("/backoffice/api-keys/999999/revoke", &admin, &[])
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    Ok(())
}

on_both_backends!(
    admins_make_and_revoke_api_keys,
    only_admins_reach_the_admin_pages,
    admins_manage_operators,
    the_audit_log_lists_filters_and_escapes,
);
