//! The upload target for the diagnostics files that GetDiagnostics asks chargers for:
//! `PUT` or `POST /ocpp/diagnostics/{chargePointId}/{fileName}` with the file as the body (raw,
//! or as the file part of a multipart/form-data body), and `POST /ocpp/diagnostics/{chargePointId}/`
//! with a multipart body whose file part names the file — chargers either append their file
//! name to the `location` they were given or post to it as it is.
//!
//! Who may upload: the charger itself, authenticated either
//! - by the upload token of its GetDiagnostics `location` (HTTP Basic, the charger id as user
//!   and the token as password; see [`voltfleet_core::ocpp::diagnostics`] for why and how
//!   tokens are made), which is forgotten once its upload is stored; or
//! - exactly as on its WebSocket ([`crate::auth`]): its OCPP password for security profiles 1
//!   and 2, its client certificate for profile 3, nothing for profile 0.
//!
//! Profiles 2 and 3 need TLS either way. Unknown chargers are refused (404), never registered.
//!
//! The body is streamed, never held whole, and bounded by `ocpp.diagnostics.max_size`: beyond
//! it the answer is 413 and nothing of the upload is kept. The local store writes a temporary
//! file in the charger's directory and renames it into place once it is complete and synced, so
//! a crash never leaves a partial file under a final name. The S3 store sends a body that fits
//! in one part with a single PutObject, and anything larger as a multipart upload, which is
//! aborted when anything fails (or the request is cancelled). Files are named
//! `{charge point id}/{UTC time}-{file name}` (under `ocpp.diagnostics.s3_prefix` in S3, under
//! `{data_dir}/diagnostics/` locally). The answer is 201 once the file is stored and the
//! charger's diagnostics status is `Uploaded` in the database.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use axum::Router;
use axum::body::BodyDataStream;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use voltfleet_core::config::{DiagnosticsStore, Settings};
use voltfleet_core::domain::ChargePointId;
use voltfleet_core::ocpp::diagnostics::{forget_upload_token, upload_token_is_valid};
use voltfleet_core::storage::ChargePoint;

use crate::Central;
use crate::auth::{Presented, Refusal};

/// Bytes sent to S3 per part of a multipart upload (S3's smallest part is 5 MiB), and the size
/// below which a file goes in one PutObject. Each upload in progress holds one part in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Uploads one node receives at once; more get 503 and retry (GetDiagnostics carries retries).
/// Bounds the memory S3 parts take: this many times [`PART_SIZE`].
const MAX_CONCURRENT_UPLOADS: usize = 32;

/// A body that sends nothing for this long is abandoned (a charger on a slow link still sends
/// something every few seconds).
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a multipart body may carry beyond its file: boundaries, part headers, small text parts.
const MULTIPART_ALLOWANCE: u64 = 64 * 1024;

/// How long what a refused client still sends is read and discarded (see [`Lingering`]).
const LINGER_TIMEOUT: Duration = Duration::from_secs(30);

/// The UTC time that starts every stored name, such as `20260102T030405.678Z`: sortable, and
/// without `:` (which many tools refuse in file names).
const STAMP_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// Longest file name accepted, in bytes: the stored name (stamp, `-`, name) must fit the 255
/// bytes a file name may have on common file systems.
const MAX_FILE_NAME: usize = 255 - "20260102T030405.678Z-".len();

/// The routes of the upload target; bodies are bounded here and in [`Body`], not by axum's
/// default limit.
pub fn routes(max_size: u64) -> Router<Arc<Central>> {
    let body_limit =
        usize::try_from(max_size.saturating_add(MULTIPART_ALLOWANCE)).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/ocpp/diagnostics/{charge_point_id}/{file_name}",
            put(upload_named).post(upload_named),
        )
        .route("/ocpp/diagnostics/{charge_point_id}/", post(upload_unnamed))
        .layer(DefaultBodyLimit::max(body_limit))
}

/// Why a diagnostics store cannot be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the diagnostics directory {path} cannot be created: {error}; check data_dir and that voltfleet may write there"
    )]
    Directory { path: PathBuf, error: io::Error },
    #[error(
        "no AWS region is known for the diagnostics bucket {bucket}: set AWS_REGION (on EC2 the instance metadata gives it)"
    )]
    NoRegion { bucket: String },
    #[error(
        "the diagnostics bucket {bucket} cannot be reached: {detail}; check ocpp.diagnostics.s3_bucket, ocpp.diagnostics.s3_endpoint, the AWS credentials, and that the role may call s3:ListBucket, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on it"
    )]
    Bucket { bucket: String, detail: String },
}

/// Where this node keeps uploads, and how many it takes at once.
#[derive(Debug)]
pub struct Uploads {
    store: Store,
    permits: Semaphore,
}

#[derive(Debug)]
enum Store {
    /// Files under this directory (`{data_dir}/diagnostics`).
    Local(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

impl Uploads {
    /// Opens the configured store: creates the local directory, or checks that the bucket
    /// answers, so that a misconfigured store stops the start instead of every upload.
    pub async fn open(settings: &Settings) -> Result<Uploads, OpenError> {
        let store = match &settings.ocpp_protocol.diagnostics.store {
            DiagnosticsStore::Local => {
                let path = settings.data_dir.join("diagnostics");
                tokio::fs::create_dir_all(&path)
                    .await
                    .map_err(|error| OpenError::Directory {
                        path: path.clone(),
                        error,
                    })?;
                Store::Local(path)
            }
            DiagnosticsStore::S3 {
                bucket,
                prefix,
                endpoint,
            } => Store::S3 {
                client: s3_client(bucket, endpoint.as_deref()).await?,
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            },
        };
        Ok(Uploads {
            store,
            permits: Semaphore::new(MAX_CONCURRENT_UPLOADS),
        })
    }

    /// Streams `body` into the store under `key`; returns the bytes stored.
    async fn put(&self, key: &ObjectKey, body: &mut Body<'_>) -> Result<u64, Failure> {
        match &self.store {
            Store::Local(root) => put_local(root, key, body).await,
            Store::S3 {
                client,
                bucket,
                prefix,
            } => put_s3(client, bucket, &key.s3_key(prefix), body).await,
        }
    }

    /// Removes a stored upload that could not be recorded; a failure is logged, as the upload
    /// is refused anyway.
    async fn remove(&self, key: &ObjectKey) {
        let removed = match &self.store {
            Store::Local(root) => tokio::fs::remove_file(key.local_path(root))
                .await
                .map_err(|err| err.to_string()),
            Store::S3 {
                client,
                bucket,
                prefix,
            } => client
                .delete_object()
                .bucket(bucket)
                .key(key.s3_key(prefix))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| DisplayErrorContext(&err).to_string()),
        };
        if let Err(error) = removed {
            tracing::error!(
                file = %self.describe(key),
                error,
                "A diagnostics upload that could not be recorded could not be removed either."
            );
        }
    }

    /// Where `key` is, for logs: `s3://bucket/key` or the file's path.
    fn describe(&self, key: &ObjectKey) -> String {
        match &self.store {
            Store::Local(root) => key.local_path(root).display().to_string(),
            Store::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{}", key.s3_key(prefix)),
        }
    }
}

async fn s3_client(bucket: &str, endpoint: Option<&str>) -> Result<aws_sdk_s3::Client, OpenError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // One part of PART_SIZE over a slow link, with room to spare.
            .operation_attempt_timeout(Duration::from_secs(120))
            .build(),
    );
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        return Err(OpenError::NoRegion {
            bucket: bucket.to_owned(),
        });
    }
    // An endpoint override (a test server, some VPC endpoints) has no per-bucket host names.
    let config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(endpoint.is_some())
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    client
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|err| OpenError::Bucket {
            bucket: bucket.to_owned(),
            detail: DisplayErrorContext(&err).to_string(),
        })?;
    Ok(client)
}

async fn upload_named(
    State(central): State<Arc<Central>>,
    path: Result<UrlPath<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let request = lingering(request, central.settings().diagnostics.max_size);
    match path {
        Ok(UrlPath((charge_point, file_name))) => {
            let outcome = upload(&central, &charge_point, Some(&file_name), request).await;
            answer(&central, &charge_point, outcome)
        }
        Err(rejection) => answer(&central, "", Err(unusable_path(&rejection))),
    }
}

async fn upload_unnamed(
    State(central): State<Arc<Central>>,
    path: Result<UrlPath<String>, PathRejection>,
    request: Request,
) -> Response {
    let request = lingering(request, central.settings().diagnostics.max_size);
    match path {
        Ok(UrlPath(charge_point)) => {
            let outcome = upload(&central, &charge_point, None, request).await;
            answer(&central, &charge_point, outcome)
        }
        Err(rejection) => answer(&central, "", Err(unusable_path(&rejection))),
    }
}

fn unusable_path(rejection: &PathRejection) -> Failure {
    Failure::BadRequest(format!(
        "the path is unusable: {}; upload to /ocpp/diagnostics/{{chargePointId}}/{{fileName}}",
        rejection.body_text()
    ))
}

/// Gives the request a body that, dropped before its end (the upload refused or broken off),
/// goes on reading and discarding what the client sends, up to `max_size` more bytes and for
/// [`LINGER_TIMEOUT`]. A client that sends its whole body before reading the answer (most
/// chargers do) then reads the refusal; closing at once would reset the connection under
/// it and lose the answer.
fn lingering(request: Request, max_size: u64) -> Request {
    let (parts, body) = request.into_parts();
    let body = Lingering {
        chunks: Some(body.into_data_stream()),
        budget: max_size.saturating_add(MULTIPART_ALLOWANCE),
    };
    Request::from_parts(parts, axum::body::Body::from_stream(body))
}

/// The body stream of [`lingering`]; `chunks` is `None` once it ended.
struct Lingering {
    chunks: Option<BodyDataStream>,
    budget: u64,
}

impl futures_util::Stream for Lingering {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let Some(chunks) = self.chunks.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let next = chunks.poll_next_unpin(cx);
        if matches!(next, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.chunks = None;
        }
        next
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut chunks) = self.chunks.take() else {
            return;
        };
        let mut budget = self.budget;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
                    while let Some(Ok(chunk)) = chunks.next().await {
                        budget = budget.saturating_sub(chunk.len() as u64);
                        if budget == 0 {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    }
}

/// A stored upload.
#[derive(Debug)]
struct Stored {
    key: ObjectKey,
    location: String,
    bytes: u64,
}

/// Why an upload is refused; each has its status, its metric outcome and a body that says
/// what to do.
#[derive(Debug)]
enum Failure {
    BadRequest(String),
    Refused(Refusal),
    TooLarge {
        limit: u64,
    },
    Busy,
    /// The body broke off before its end.
    Incomplete(String),
    /// The body stopped arriving for [`BODY_IDLE_TIMEOUT`].
    Stalled,
    /// The store or the database failed.
    Unavailable(String),
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) | Failure::Incomplete(_) => StatusCode::BAD_REQUEST,
            Failure::Refused(refusal) => refusal.status(),
            Failure::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::Stalled => StatusCode::REQUEST_TIMEOUT,
            Failure::Busy | Failure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The metric label.
    fn outcome(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "bad_request",
            Failure::Refused(Refusal::Unavailable(_)) | Failure::Unavailable(_) => "failed",
            Failure::Refused(_) => "refused",
            Failure::TooLarge { .. } => "too_large",
            Failure::Busy => "busy",
            Failure::Incomplete(_) | Failure::Stalled => "incomplete",
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::BadRequest(problem) => format!("{problem}\n"),
            Failure::Refused(refusal) => refusal.message(),
            Failure::TooLarge { limit } => format!(
                "the diagnostics file is larger than {limit} bytes (ocpp.diagnostics.max_size); nothing was kept\n"
            ),
            Failure::Busy => "the central system is receiving many uploads; retry shortly\n".into(),
            Failure::Incomplete(_) => "the upload ended before its body was complete; nothing was kept\n".into(),
            Failure::Stalled => format!(
                "the upload sent nothing for {}s; nothing was kept\n",
                BODY_IDLE_TIMEOUT.as_secs()
            ),
            Failure::Unavailable(_) => {
                "the central system cannot store the upload right now; nothing was kept, retry shortly\n".into()
            }
        }
    }

    /// What the log says beyond the message.
    fn detail(&self) -> &str {
        match self {
            Failure::BadRequest(detail)
            | Failure::Incomplete(detail)
            | Failure::Unavailable(detail) => detail,
            Failure::Refused(Refusal::Unavailable(detail)) => detail,
            Failure::Refused(refusal) => refusal.reason(),
            _ => "",
        }
    }
}

fn answer(central: &Central, charge_point: &str, outcome: Result<Stored, Failure>) -> Response {
    let label = outcome
        .as_ref()
        .map_or_else(Failure::outcome, |_| "uploaded");
    central
        .metrics
        .diagnostics_uploads
        .with_label_values(&[label])
        .inc();
    match outcome {
        Ok(stored) => {
            tracing::info!(
                charge_point,
                file = %stored.location,
                bytes = stored.bytes,
                "Stored a diagnostics upload."
            );
            (
                StatusCode::CREATED,
                format!("stored as {} ({} bytes)\n", stored.key, stored.bytes),
            )
                .into_response()
        }
        Err(failure) => {
            tracing::warn!(
                charge_point,
                outcome = label,
                status = failure.status().as_u16(),
                detail = failure.detail(),
                "Refused a diagnostics upload."
            );
            let mut response = (failure.status(), failure.message()).into_response();
            let headers = response.headers_mut();
            if failure.status() == StatusCode::UNAUTHORIZED {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"voltfleet OCPP\", charset=\"UTF-8\""),
                );
            }
            if failure.status() == StatusCode::SERVICE_UNAVAILABLE {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            }
            response
        }
    }
}

async fn upload(
    central: &Central,
    charge_point: &str,
    file_name: Option<&str>,
    request: Request,
) -> Result<Stored, Failure> {
    let identity: ChargePointId =
        charge_point
            .parse()
            .map_err(|err: voltfleet_core::domain::InvalidChargePointId| {
                Failure::BadRequest(err.to_string())
            })?;
    let file_name = file_name.map(checked_file_name).transpose()?;
    let charger = central
        .ctx
        .db
        .charge_points()
        .find_by_identity(&identity)
        .await
        .map_err(|err| Failure::Refused(Refusal::Unavailable(err.to_string())))?
        .ok_or(Failure::Refused(Refusal::UnknownCharger))?;
    let token = authenticate(central, &charger, request.headers())
        .await
        .map_err(Failure::Refused)?;
    let _permit = central
        .uploads
        .permits
        .try_acquire()
        .map_err(|_| Failure::Busy)?;

    let limit = central.settings().diagnostics.max_size;
    let upload = Upload {
        central,
        charger: &charger,
        token: token.as_deref(),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if is_multipart(request.headers()) {
        if declared.is_some_and(|length| length > limit.saturating_add(MULTIPART_ALLOWANCE)) {
            return Err(Failure::TooLarge { limit });
        }
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| {
                Failure::BadRequest(format!(
                    "the multipart body is unusable: {}",
                    rejection.body_text()
                ))
            })?;
        while let Some(field) = idle_bounded(multipart.next_field())
            .await?
            .map_err(|err| multipart_failure(&err, limit))?
        {
            // Text parts (some chargers add their id or a checksum) are skipped.
            let Some(part_name) = field.file_name() else {
                continue;
            };
            let name = match file_name {
                Some(name) => name.to_owned(),
                None => checked_file_name(part_name)?.to_owned(),
            };
            let chunks = field
                .map_err(move |err| multipart_failure(&err, limit))
                .boxed();
            return upload.store(&name, Body::new(chunks, limit)).await;
        }
        Err(Failure::BadRequest(
            "the multipart body has no file part; send the diagnostics file as a part with a filename".into(),
        ))
    } else {
        let Some(name) = file_name else {
            return Err(Failure::BadRequest(
                "no file name: PUT or POST the file to /ocpp/diagnostics/{chargePointId}/{fileName}, or POST it here as multipart/form-data with a filename".into(),
            ));
        };
        if declared.is_some_and(|length| length > limit) {
            return Err(Failure::TooLarge { limit });
        }
        let chunks = request
            .into_body()
            .into_data_stream()
            .map_err(|err| Failure::Incomplete(err.to_string()))
            .boxed();
        upload.store(name, Body::new(chunks, limit)).await
    }
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn multipart_failure(err: &MultipartError, limit: u64) -> Failure {
    match err.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Failure::TooLarge { limit },
        StatusCode::BAD_REQUEST => Failure::BadRequest(format!(
            "the multipart body is malformed: {}",
            err.body_text()
        )),
        _ => Failure::Incomplete(err.body_text()),
    }
}

async fn idle_bounded<T>(next: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(BODY_IDLE_TIMEOUT, next)
        .await
        .map_err(|_| Failure::Stalled)
}

/// Authenticates the uploading charger; returns the upload token it used, if it used one.
async fn authenticate(
    central: &Central,
    charger: &ChargePoint,
    headers: &HeaderMap,
) -> Result<Option<String>, Refusal> {
    let identity = &charger.identity;
    let presented = Presented::from_headers(headers, &central.settings().client_cert_header);
    let mut tokens_unavailable = None;
    if let Some(password) = presented.basic_password_of(identity) {
        match upload_token_is_valid(&central.ctx.shared.cache, identity, password).await {
            Ok(true) => {
                return if charger.security_profile >= 2 && !presented.over_tls() {
                    Err(Refusal::NotTls)
                } else {
                    Ok(Some(password.to_owned()))
                };
            }
            Ok(false) => {}
            Err(err) => tokens_unavailable = Some(err.to_string()),
        }
    }
    let checked = presented
        .authenticate(
            identity,
            charger.security_profile,
            charger.ocpp_password_hash.as_deref(),
            &central.passwords,
        )
        .await;
    match (checked, tokens_unavailable) {
        (Ok(()), _) => Ok(None),
        // The password may have been a token that could not be looked up.
        (Err(_), Some(problem)) => Err(Refusal::Unavailable(format!(
            "upload tokens cannot be checked: {problem}"
        ))),
        (Err(refusal), None) => Err(refusal),
    }
}

/// A file name as the charger gave it, if it is safe to store as the end of a file's name.
fn checked_file_name(name: &str) -> Result<&str, Failure> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_FILE_NAME {
        Some("it is too long")
    } else if name.contains(['/', '\\']) {
        Some("it contains a path separator")
    } else if name == "." || name.contains("..") {
        Some("it contains `..` or is `.`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match problem {
        None => Ok(name),
        Some(problem) => {
            let shown: String = name.chars().take(64).collect();
            Err(Failure::BadRequest(format!(
                "the file name {shown:?} is unusable: {problem}; name the file with 1 to {MAX_FILE_NAME} bytes, without /, \\, `..` or control characters"
            )))
        }
    }
}

/// One upload being stored, by an authenticated charger.
struct Upload<'a> {
    central: &'a Central,
    charger: &'a ChargePoint,
    token: Option<&'a str>,
}

impl Upload<'_> {
    /// Stores the body, then records the upload; an upload that cannot be recorded is removed
    /// and refused, so that the charger's retry starts clean.
    async fn store(&self, file_name: &str, mut body: Body<'_>) -> Result<Stored, Failure> {
        let uploads = &self.central.uploads;
        let key = ObjectKey::new(&self.charger.identity, file_name, Utc::now())?;
        let bytes = uploads.put(&key, &mut body).await?;
        let recorded = self
            .central
            .ctx
            .db
            .charge_points()
            .record_diagnostics_status(self.charger.id, "Uploaded", Utc::now())
            .await;
        if let Err(err) = recorded {
            uploads.remove(&key).await;
            return Err(Failure::Unavailable(format!(
                "the upload could not be recorded: {err}"
            )));
        }
        if let Some(token) = self.token
            && let Err(err) = forget_upload_token(&self.central.ctx.shared.cache, token).await
        {
            // It expires by itself after ocpp.diagnostics.token_ttl.
            tracing::warn!(
                charge_point = %self.charger.identity,
                error = %err,
                "A used diagnostics upload token could not be forgotten."
            );
        }
        Ok(Stored {
            location: uploads.describe(&key),
            key,
            bytes,
        })
    }
}

/// The name of a stored upload: the charger's directory and the stamped file name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectKey {
    directory: String,
    name: String,
}

impl ObjectKey {
    fn new(
        charge_point: &ChargePointId,
        file_name: &str,
        at: DateTime<Utc>,
    ) -> Result<ObjectKey, Failure> {
        // A charger id is visible ASCII without `/`, but `.` and `..` are ids too.
        if matches!(charge_point.as_str(), "." | "..") {
            return Err(Failure::BadRequest(format!(
                "the charger id {charge_point:?} cannot name a directory of diagnostics files; give the charger another id"
            )));
        }
        Ok(ObjectKey {
            directory: charge_point.as_str().to_owned(),
            name: format!("{}-{file_name}", at.format(STAMP_FORMAT)),
        })
    }

    fn s3_key(&self, prefix: &str) -> String {
        format!("{prefix}{self}")
    }

    fn local_path(&self, root: &Path) -> PathBuf {
        root.join(&self.directory).join(&self.name)
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.directory, self.name)
    }
}

/// An upload's body, chunk by chunk, bounded in size and in idle time.
struct Body<'a> {
    chunks: BoxStream<'a, Result<Bytes, Failure>>,
    received: u64,
    limit: u64,
}

impl<'a> Body<'a> {
    fn new(chunks: BoxStream<'a, Result<Bytes, Failure>>, limit: u64) -> Body<'a> {
        Body {
            chunks,
            received: 0,
            limit,
        }
    }

    /// The next chunk, `None` at the end; a chunk that takes the body past the limit is an
    /// error, never handed to the store.
    async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        let Some(chunk) = idle_bounded(self.chunks.next()).await? else {
            return Ok(None);
        };
        let chunk = chunk?;
        self.received = self.received.saturating_add(chunk.len() as u64);
        if self.received > self.limit {
            return Err(Failure::TooLarge { limit: self.limit });
        }
        Ok(Some(chunk))
    }
}

/// Writes a temporary file next to the final one, syncs it, then renames it into place (never
/// over an existing file) and syncs the directory. A temporary file is removed when the upload
/// fails or is cancelled.
async fn put_local(root: &Path, key: &ObjectKey, body: &mut Body<'_>) -> Result<u64, Failure> {
    let directory = root.join(&key.directory);
    let target = key.local_path(root);
    let failed = |what: &'static str| {
        let path = target.clone();
        move |err: io::Error| {
            Failure::Unavailable(format!("{what} for {} failed: {err}", path.display()))
        }
    };
    tokio::fs::create_dir_all(&directory)
        .await
        .map_err(failed("creating the directory"))?;
    let temporary = {
        let directory = directory.clone();
        tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix(".upload-")
                .suffix(".part")
                .tempfile_in(directory)
        })
        .await
        .map_err(|err| Failure::Unavailable(format!("creating a temporary file: {err}")))?
        .map_err(failed("creating a temporary file"))?
    };
    let mut file = tokio::fs::File::from_std(
        temporary
            .as_file()
            .try_clone()
            .map_err(failed("opening the temporary file"))?,
    );
    let mut written = 0_u64;
    while let Some(chunk) = body.next().await? {
        file.write_all(&chunk)
            .await
            .map_err(failed("writing the file"))?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(failed("writing the file"))?;
    file.sync_all().await.map_err(failed("syncing the file"))?;
    drop(file);
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        temporary
            .persist_noclobber(&target)
            .map_err(|err| err.error)?;
        std::fs::File::open(&directory)?.sync_all()
    })
    .await
    .map_err(|err| Failure::Unavailable(format!("renaming the file into place: {err}")))?
    .map_err(|err| Failure::Unavailable(format!("renaming the file into place: {err}")))?;
    Ok(written)
}

/// One PutObject for a body smaller than a part, else a multipart upload of [`PART_SIZE`]
/// parts, aborted when anything fails.
async fn put_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &mut Body<'_>,
) -> Result<u64, Failure> {
    let mut buffer = BytesMut::new();
    if fill(&mut buffer, body).await? {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(buffer.freeze()))
            .send()
            .await
            .map_err(|err| s3_failure("PutObject", key, &err))?;
        return Ok(body.received);
    }
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| s3_failure("CreateMultipartUpload", key, &err))?;
    let upload_id = created.upload_id().ok_or_else(|| {
        Failure::Unavailable(format!("S3 gave no upload id for the upload of {key}"))
    })?;
    let mut pending = PendingUpload {
        client: client.clone(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: Some(upload_id.to_owned()),
    };
    match send_parts(client, bucket, key, upload_id, buffer, body).await {
        Ok(parts) => {
            client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|err| s3_failure("CompleteMultipartUpload", key, &err))?;
            pending.upload_id = None;
            Ok(body.received)
        }
        Err(failure) => {
            pending.abort().await;
            Err(failure)
        }
    }
}

/// Sends `buffer` (a full part) and the rest of `body` as parts.
async fn send_parts(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    mut buffer: BytesMut,
    body: &mut Body<'_>,
) -> Result<Vec<CompletedPart>, Failure> {
    let mut parts = Vec::new();
    let mut ended = false;
    while !buffer.is_empty() {
        let number = i32::try_from(parts.len() + 1)
            .map_err(|_| Failure::Unavailable(format!("the upload of {key} has too many parts")))?;
        let sent = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(buffer.split().freeze()))
            .send()
            .await
            .map_err(|err| s3_failure("UploadPart", key, &err))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_owned))
                .build(),
        );
        if !ended {
            ended = fill(&mut buffer, body).await?;
        }
    }
    Ok(parts)
}

/// Reads `body` into `buffer` until it holds a part; true when the body ended first.
async fn fill(buffer: &mut BytesMut, body: &mut Body<'_>) -> Result<bool, Failure> {
    while buffer.len() < PART_SIZE {
        match body.next().await? {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => return Ok(true),
        }
    }
    Ok(false)
}

fn s3_failure<E: std::error::Error + 'static>(operation: &str, key: &str, err: &E) -> Failure {
    Failure::Unavailable(format!(
        "S3 {operation} for {key} failed: {}",
        DisplayErrorContext(err)
    ))
}

/// A multipart upload not yet completed; dropped without completing (the request cancelled
/// mid-upload), it is aborted in the background so that S3 keeps none of its parts.
struct PendingUpload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// `None` once completed or aborted.
    upload_id: Option<String>,
}

impl PendingUpload {
    async fn abort(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            abort_upload(&self.client, &self.bucket, &self.key, &upload_id).await;
        }
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let (client, bucket, key) = (
            self.client.clone(),
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    abort_upload(&client, &bucket, &key, &upload_id).await;
                });
            }
            Err(_) => tracing::error!(
                key,
                "A cancelled multipart upload could not be aborted; the bucket's lifecycle rule for incomplete uploads removes its parts."
            ),
        }
    }
}

async fn abort_upload(client: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    let aborted = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(err) = aborted {
        tracing::error!(
            key,
            error = %DisplayErrorContext(&err),
            "A failed multipart upload could not be aborted; the bucket's lifecycle rule for incomplete uploads removes its parts."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&'static [u8]], limit: u64) -> Body<'static> {
        let chunks: Vec<Result<Bytes, Failure>> = chunks
            .iter()
            .map(|chunk| Ok(Bytes::from_static(chunk)))
            .collect();
        Body::new(futures_util::stream::iter(chunks).boxed(), limit)
    }

    async fn drain(mut body: Body<'_>) -> Result<u64, Failure> {
        let mut total = 0;
        while let Some(chunk) = body.next().await? {
            total += chunk.len() as u64;
        }
        Ok(total)
    }

    #[test]
    fn file_names_that_could_leave_their_directory_are_refused() {
        for good in [
            "diagnostics.zip",
            "CP-1_2026-01-02 log.tar.gz",
            "ünïcode.txt",
            ".hidden",
        ] {
            assert!(checked_file_name(good).is_ok(), "{good} was refused");
        }
        let longest = "a".repeat(MAX_FILE_NAME);
        assert!(checked_file_name(&longest).is_ok());
        for bad in [
            String::new(),
            format!("{longest}a"),
            "logs/diag.zip".into(),
            "C:\\logs\\diag.zip".into(),
            "..".into(),
            ".".into(),
            "../../etc/passwd".into(),
            "diag..zip".into(),
            "diag\n.zip".into(),
            "diag\0.zip".into(),
            "diag\u{7f}.zip".into(),
        ] {
            match checked_file_name(&bad) {
                Err(Failure::BadRequest(message)) => {
                    assert!(message.contains("is unusable"), "{message}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_stored_name_fits_in_a_file_name() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .expect("time")
            .with_timezone(&Utc);
        let cp: ChargePointId = "CP-1".parse().expect("id");
        let key = ObjectKey::new(&cp, &"a".repeat(MAX_FILE_NAME), at).expect("key");
        assert_eq!(key.name.len(), 255);
        let key = ObjectKey::new(&cp, "diag.zip", at).expect("key");
        assert_eq!(key.to_string(), "CP-1/20260102T030405.678Z-diag.zip");
        assert_eq!(
            key.s3_key("diagnostics/"),
            "diagnostics/CP-1/20260102T030405.678Z-diag.zip"
        );
        for dots in ["..", "."] {
            let id: ChargePointId = dots.parse().expect("id");
            assert!(ObjectKey::new(&id, "diag.zip", at).is_err());
        }
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_passes_and_one_byte_more_does_not() {
        assert_eq!(drain(body(&[b"abcd", b"efgh"], 8)).await.ok(), Some(8));
        assert_eq!(drain(body(&[], 8)).await.ok(), Some(0));
        assert!(matches!(
            drain(body(&[b"abcd", b"efgh", b"i"], 8)).await,
            Err(Failure::TooLarge { limit: 8 })
        ));
        // The chunk that crosses the limit is never handed over.
        let mut over = body(&[b"abcdef", b"ghij"], 8);
        assert_eq!(
            over.next().await.ok().flatten(),
            Some(Bytes::from_static(b"abcdef"))
        );
        assert!(matches!(over.next().await, Err(Failure::TooLarge { .. })));
    }

    #[tokio::test]
    async fn a_local_upload_over_the_limit_leaves_nothing() -> Result<(), Box<dyn std::error::Error>>
    {
        let root = tempfile::tempdir()?;
        let cp: ChargePointId = "CP-1".parse()?;
        let key = ObjectKey::new(&cp, "diag.zip", Utc::now()).map_err(|f| f.message())?;
        let mut over = body(&[b"abcd", b"efgh"], 6);
        assert!(matches!(
            put_local(root.path(), &key, &mut over).await,
            Err(Failure::TooLarge { .. })
        ));
        let left: Vec<_> = std::fs::read_dir(root.path().join("CP-1"))?.collect();
        assert!(left.is_empty(), "{left:?}");

        let mut fits = body(&[b"abcd", b"ef"], 6);
        assert_eq!(put_local(root.path(), &key, &mut fits).await.ok(), Some(6));
        assert_eq!(std::fs::read(key.local_path(root.path()))?, b"abcdef");
        let names: Vec<_> = std::fs::read_dir(root.path().join("CP-1"))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, [std::ffi::OsString::from(&key.name)]);
        Ok(())
    }
}
