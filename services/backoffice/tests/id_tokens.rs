//! ID tokens in the Back Office against the real server (see `support`).

mod support;

use reqwest::StatusCode;
use support::{Backend, TestApp, on_both_backends};
use voltfleet_core::domain::{AuditOutcome, IdTokenStatus, Role};

async fn operators_add_block_and_expire_tokens(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    app.operator("olga@example.com", Role::Operator).await?;
    let operator = app.login("olga@example.com").await?;
    let bad = app
        .post(
            "/backoffice/id-tokens",
            &operator,
            &[
                ("token", "A TOKEN LONGER THAN TWENTY"),
                ("token_type", "RFID"),
                ("status", "Maybe"),
                ("expires_at", "soon"),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (field, message) in [
        ("token", "An OCPP 1.6 ID token has at most 20 characters."),
        ("status", "“Maybe” is not one of the choices."),
        (
            "expires_at",
            "“soon” is not a date and time such as 2025-06-01T10:00 (UTC).",
        ),
    ] {
        assert!(
            bad.body
                .contains(&format!("id=\"new-{field}-error\">{message}")),
            "{field}: {}",
            bad.body
        );
    }
    let added = app
        .post(
            "/backoffice/id-tokens",
            &operator,
            &[
                ("token", "FLEET-<7>"),
                ("token_type", "RFID"),
                ("status", "Accepted"),
                ("group_token", "FLEET"),
                ("label", "Van 7"),
            ],
        )
        .await?;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(
        added
            .body
            .contains("FLEET-&#60;7&#62; is added as Accepted."),
        "{}",
        added.body
    );
    assert!(
        added
            .body
            .contains("href=\"/backoffice/id-tokens/FLEET-%3C7%3E\""),
        "{}",
        added.body
    );
    let twice = app
        .post(
            "/backoffice/id-tokens",
            &operator,
            &[
                ("token", "fleet-<7>"),
                ("token_type", "RFID"),
                ("status", "Accepted"),
            ],
        )
        .await?;
    assert!(
        twice.body.contains("This token is known already"),
        "{}",
        twice.body
    );

    let blocked = app
        .post(
            "/backoffice/id-tokens/FLEET-%3C7%3E",
            &operator,
            &[
                ("status", "Blocked"),
                ("expires_at", "2031-01-01T08:30"),
                ("group_token", ""),
            ],
        )
        .await?;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
    let stored = app
        .ctx
        .db
        .id_tokens()
        .find("FLEET-<7>")
        .await?
        .expect("stored");
    assert_eq!(stored.status, IdTokenStatus::Blocked);
    assert_eq!(
        stored.expires_at.map(|at| at.to_rfc3339()),
        Some("2031-01-01T08:30:00+00:00".into())
    );
    assert_eq!(stored.group_token, None);

    // Accepted but past its expiry, it is answered Expired; the page says both.
    let past = app
        .post(
            "/backoffice/id-tokens/FLEET-%3C7%3E",
            &operator,
            &[("status", "Accepted"), ("expires_at", "2020-01-01T00:00")],
        )
        .await?;
    assert!(
        past.body.contains("<dt>Answered now</dt><dd>Expired</dd>"),
        "{}",
        past.body
    );
    let list = app
        .get("/backoffice/id-tokens?status=Accepted", Some(&operator))
        .await?;
    assert!(
        list.body
            .contains("Expired <span class=\"muted\">(stored Accepted)</span>"),
        "{}",
        list.body
    );

    let viewer = app.login("vera@example.com").await?;
    let page = app
        .get("/backoffice/id-tokens/FLEET-%3C7%3E", Some(&viewer))
        .await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<button type=\"submit\">Save</button>"));
    let refused = app
        .post(
            "/backoffice/id-tokens/FLEET-%3C7%3E",
            &viewer,
            &[("status", "Accepted")],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = app
        .post(
            "/backoffice/id-tokens",
            &viewer,
            &[
                ("token", "X"),
                ("token_type", "RFID"),
                ("status", "Accepted"),
            ],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(app.ctx.db.id_tokens().find("X").await?.is_none());
    let missing = app.get("/backoffice/id-tokens/NOPE", Some(&viewer)).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let audit = app.ctx.db.audit().recent(100).await?;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "id_token.update" && e.outcome == AuditOutcome::Success)
            .count(),
        2
    );
    assert!(audit.iter().any(|e| e.action == "id_token.create"));
    Ok(())
}

on_both_backends!(operators_add_block_and_expire_tokens);
