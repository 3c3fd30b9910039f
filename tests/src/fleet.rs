//! The fleet's Redis for proxy tests: the test server (`VOLTFLEET_TEST_REDIS_URL`), with a key
//! prefix of each test's own so that tests running at once never see each other's keys.

/// One test's share of the Redis server.
#[derive(Debug)]
pub struct FleetRedis {
    pub url: String,
    pub prefix: String,
}

impl FleetRedis {
    pub fn new() -> FleetRedis {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        FleetRedis {
            url: std::env::var("VOLTFLEET_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string()),
            prefix: format!("voltfleet-test:{}-{nanos}:", std::process::id()),
        }
    }

    /// The `[fleet]` section pointing at it, reconnecting quickly.
    pub fn section(&self) -> String {
        format!(
            "\n[fleet]\nredis_url = \"{}\"\nkey_prefix = \"{}\"\nmax_reconnect_delay = \"1s\"\n",
            self.url, self.prefix
        )
    }

    /// Removes every key the test's proxies made.
    pub async fn remove_keys(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(())
    }
}

impl Default for FleetRedis {
    fn default() -> Self {
        FleetRedis::new()
    }
}
