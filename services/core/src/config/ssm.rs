//! Reads the fleet's configuration from AWS SSM Parameter Store, once, at start.
//!
//! Every parameter below `ssm.path` is read recursively with decryption, so SecureString
//! parameters (passwords, connection URLs) arrive as plain text and never touch the disk.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ssm::error::DisplayErrorContext;

use super::SsmSettings;

/// Fetches every parameter under `settings.path` as `(full name, value)` pairs.
pub async fn fetch_parameters(settings: &SsmSettings) -> Result<Vec<(String, String)>, String> {
    let Some(path) = settings.path.as_deref() else {
        return Ok(Vec::new());
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .operation_attempt_timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build(),
    );
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint.clone());
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        return Err("no AWS region is known: set ssm.region or AWS_REGION".into());
    }
    let client = aws_sdk_ssm::Client::new(&sdk_config);
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    let mut parameters = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            format!(
                "reading parameters under {path} failed: {}",
                DisplayErrorContext(&err)
            )
        })?;
        for parameter in page.parameters() {
            if let (Some(name), Some(value)) = (parameter.name(), parameter.value()) {
                parameters.push((name.to_string(), value.to_string()));
            }
        }
    }
    Ok(parameters)
}
