//! The smallest Pingora reverse proxy: one listener, one upstream, no phase but
//! `upstream_peer`. `bench/proxy-vs-nginx/instructions` measures it beside NGINX and
//! voltfleet-proxy, so that the cost of Pingora itself and the cost of voltfleet's own phases
//! can be told apart.
//!
//!     cargo run --release -p voltfleet-proxy --example bare_pingora -- LISTEN UPSTREAM
//!
//! LISTEN and UPSTREAM are `IP:PORT`. One worker thread, like the benchmark's other proxies.

use std::net::SocketAddr;

use anyhow::Context;
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::upstreams::peer::HttpPeer;

// The allocator voltfleet-proxy uses, so that the comparison is of the proxies alone.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct BareProxy {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for BareProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_pingora LISTEN UPSTREAM (both IP:PORT)";
    let listen: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let upstream: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let conf = ServerConf {
        threads: 1,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, BareProxy { upstream });
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);
    server.run_forever()
}
