//! `voltfleet up`: the whole stack on one machine, with demo data, for trying voltfleet out.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use voltfleet_core::config::{ServiceName, Source};
use voltfleet_core::context::AppContext;
use voltfleet_core::metrics::Metrics;

use super::{load_and_init, shutdown_on_signal};
use crate::demo::{self, DemoData};
use crate::proxy::{self, ProxyChild};
use crate::site;
use crate::startup::Application;

/// Migrates, seeds the demo data (once), starts every service and prints what to open.
pub async fn up(file: Option<&Path>) -> anyhow::Result<()> {
    let mut loaded = load_and_init(file).await?;
    // Drivers can sign in on one machine without configuring a secret; `serve` never makes one.
    if loaded.settings.api_accounts.token_secret.is_none() {
        loaded.settings.api_accounts.token_secret =
            Some(demo::token_secret(&loaded.settings.data_dir)?);
    }
    // The proxy of `up` speaks plain HTTP on loopback, where a browser would drop a Secure
    // cookie; unless the configuration says otherwise, the Back Office's cookie is not Secure.
    let cookie_secure_configured = loaded
        .effective
        .iter()
        .any(|value| value.key == "backoffice.cookie_secure" && value.source != Source::Default);
    if !cookie_secure_configured {
        loaded.settings.backoffice_ui.cookie_secure = false;
    }
    let ctx = AppContext::connect(loaded.settings, Metrics::new(), true).await?;
    let demo = demo::seed(&ctx.db, &ctx.settings.data_dir).await?;
    let app = Application::bind(&ctx, &ServiceName::ALL).await?;
    let addresses = app.addresses();
    let proxy = start_proxy(&ctx, &addresses).await?;
    print_banner(&ctx, &addresses, proxy.as_ref(), &demo)?;
    let served = app.run_until_stopped(shutdown_on_signal()).await;
    if let Some(proxy) = proxy {
        proxy.stop().await;
    }
    ctx.db.close().await;
    served
}

/// Starts the proxy in front of the services, unless `up.proxy` is false or it is not installed.
async fn start_proxy(
    ctx: &AppContext,
    addresses: &[(ServiceName, SocketAddr)],
) -> anyhow::Result<Option<ProxyChild>> {
    if !ctx.settings.up.proxy {
        return Ok(None);
    }
    let Some(binary) = proxy::find_binary() else {
        tracing::warn!(
            "voltfleet-proxy is not installed next to voltfleet; the services are reachable on their own ports only."
        );
        return Ok(None);
    };
    let site = site::find(ctx.settings.up.site_dir.as_deref());
    if site.is_none() {
        tracing::warn!(
            "The website (site/) was not found; the proxy answers 404 at /. Run up from the repository, or set up.site_dir."
        );
    }
    Ok(Some(
        ProxyChild::start(&binary, &ctx.settings, addresses, site).await?,
    ))
}

fn print_banner(
    ctx: &AppContext,
    addresses: &[(ServiceName, SocketAddr)],
    proxy: Option<&ProxyChild>,
    demo: &DemoData,
) -> std::io::Result<()> {
    let at = |service: ServiceName| {
        addresses
            .iter()
            .find(|(name, _)| *name == service)
            .map_or_else(|| "(not running)".to_string(), |(_, a)| a.to_string())
    };
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "voltfleet {} is up. Storage: {}; cache and bus: {}.",
        env!("CARGO_PKG_VERSION"),
        ctx.db.describe(),
        ctx.shared.describe()
    )?;
    writeln!(out)?;
    if let Some(proxy) = proxy {
        let listen = proxy.listen;
        writeln!(
            out,
            "  Proxy        http://{listen}/   (/api/v1/, /ocpp/{{id}}, /ocpi/, /backoffice/ behind one address)"
        )?;
        if let Some(site) = &proxy.site {
            writeln!(
                out,
                "  Website      http://{listen}/   (from {}; a charger's QR code: http://{listen}/charger/?id={})",
                site.display(),
                demo.charge_points[0]
            )?;
        }
    }
    writeln!(
        out,
        "  API          http://{}/api/v1/",
        at(ServiceName::Api)
    )?;
    writeln!(
        out,
        "  Back Office  http://{}/backoffice/   sign in as {} / {}",
        at(ServiceName::Backoffice),
        demo.operator_email,
        demo.operator_password
    )?;
    writeln!(
        out,
        "  OCPP         ws://{}/ocpp/{}   (also {}; Basic-auth password {})",
        at(ServiceName::Ocpp),
        demo.charge_points[0],
        demo.charge_points[1..].join(", "),
        demo.charger_password
    )?;
    writeln!(
        out,
        "  OCPI         http://{}/ocpi/versions",
        at(ServiceName::Ocpi)
    )?;
    writeln!(
        out,
        "  Jobs         http://{}/healthz",
        at(ServiceName::Jobs)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "  Demo data: location \"{}\", RFID id token {}, API key {}",
        demo.location, demo.id_token, demo.api_key
    )?;
    writeln!(
        out,
        "  Every service answers /healthz, /readyz and /metrics. Press Ctrl-C to stop."
    )?;
    writeln!(out)?;
    out.flush()
}
