//! JWT-SVID files: one token per configured audience, checked against the agent's JWT
//! bundles, written, and fetched again at half its remaining life, as spiffe-helper does.
//!
//! A new token does not signal the command: programs read token files on each use, and
//! spiffe-helper signals for X.509 updates only.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lanyard_spiffe::jwt::JwtError;
use lanyard_spiffe::{JwtSvid, SpiffeId};
use lanyard_workload::client::WorkloadClient;
use lanyard_workload::{ClientError, EndpointAddr};

use super::files;
use super::values::JwtSvidFile;
use crate::cmd::retry_report::RetryReport;
use crate::output::out;

/// The first wait after a failed renewal; it doubles up to [`MAX_RETRY`] (spiffe-helper's
/// schedule).
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two failed renewals.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// The shortest wait before renewing a token that is about to expire, so that an agent
/// handing out nearly expired tokens does not make the helper spin.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Why one JWT-SVID could not be renewed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenewError {
    /// The Workload API is unreachable or refused the request.
    #[error("cannot fetch a JWT-SVID for audience {audience:?}")]
    Fetch {
        /// The configured `jwt_audience`.
        audience: String,
        /// The client's error.
        source: ClientError,
    },
    /// The token the agent sent does not validate against the agent's own JWT bundles.
    #[error("the JWT-SVID for audience {audience:?} does not validate against the JWT bundles")]
    Invalid {
        /// The configured `jwt_audience`.
        audience: String,
        /// The rule the token breaks.
        source: JwtError,
    },
    /// The file cannot be written.
    #[error("cannot write the JWT-SVID file {path}: {reason}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
}

impl RenewError {
    /// Whether trying again later may help: a fetch the client would retry, or a token signed
    /// by a key the bundles do not show yet; a file that cannot be written stays so.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            RenewError::Fetch { source, .. } => source.is_retryable(),
            RenewError::Invalid { .. } => true,
            RenewError::Write { .. } => false,
        }
    }
}

/// What one renewal wrote.
#[derive(Debug)]
pub(crate) struct Renewed {
    /// The file.
    pub(crate) path: PathBuf,
    /// The token's `sub`.
    pub(crate) spiffe_id: SpiffeId,
    /// The token's `exp`.
    pub(crate) expiry: SystemTime,
}

/// Fetches a JWT-SVID for `file`'s audiences, validates it for the main audience against the
/// JWT bundles the agent serves, and writes it to `dir` with `mode`. With several identities
/// the first token is written, as spiffe-helper does without a hint.
///
/// # Errors
///
/// See [`RenewError`].
pub(crate) async fn renew_once(
    addr: &EndpointAddr,
    dir: &Path,
    mode: u32,
    file: &JwtSvidFile,
) -> Result<Renewed, RenewError> {
    let fetch = |source| RenewError::Fetch {
        audience: file.audience.clone(),
        source,
    };
    let mut client = WorkloadClient::connect(addr).await.map_err(fetch)?;
    let svids = client
        .fetch_jwt_svids(&file.audiences(), None)
        .await
        .map_err(fetch)?;
    let first = svids
        .into_iter()
        .next()
        .ok_or_else(|| fetch(ClientError::Empty))?;
    let bundles = client.fetch_jwt_bundles().await.map_err(fetch)?;

    let svid = JwtSvid::parse_and_validate(
        &first.token,
        &bundles,
        &[file.audience.as_str()],
        SystemTime::now(),
    )
    .map_err(|source| RenewError::Invalid {
        audience: file.audience.clone(),
        source,
    })?;

    let path = dir.join(&file.file_name);
    files::write_jwt_svid(&path, svid.token(), mode).map_err(|e| RenewError::Write {
        path: path.clone(),
        reason: format!("{e:#}"),
    })?;
    Ok(Renewed {
        path,
        spiffe_id: svid.spiffe_id().clone(),
        expiry: svid.expiry(),
    })
}

/// Renews until it succeeds once, waiting between attempts; for `daemon_mode = false`.
///
/// # Errors
///
/// The first failure that retrying cannot fix.
pub(crate) async fn renew_until_written(
    addr: &EndpointAddr,
    dir: &Path,
    mode: u32,
    file: &JwtSvidFile,
) -> Result<Renewed, RenewError> {
    let mut backoff = Backoff::default();
    let mut report = report_for(file);
    loop {
        match renew_once(addr, dir, mode, file).await {
            Ok(renewed) => {
                report.succeeded();
                return Ok(renewed);
            }
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                let wait = backoff.next_wait();
                report.failed(&describe(&e), wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Keeps `file` fresh until cancelled: renews at half the token's remaining life, and after
/// a failure retries with a backoff from 1 s doubling to 60 s.
///
/// # Cancel safety
///
/// Cancel safe: a file is replaced by a rename, so dropping the future leaves the old token
/// or the new one.
pub(crate) async fn keep_renewed(addr: EndpointAddr, dir: PathBuf, mode: u32, file: JwtSvidFile) {
    let mut backoff = Backoff::default();
    let mut failures = report_for(&file);
    loop {
        let wait = match renew_once(&addr, &dir, mode, &file).await {
            Ok(renewed) => {
                failures.succeeded();
                report(&file, &renewed);
                backoff = Backoff::default();
                refresh_in(SystemTime::now(), renewed.expiry)
            }
            Err(e) => {
                let wait = backoff.next_wait();
                // Each distinct failure once, whether it may heal (no identity yet) or not (an
                // audience the agent refuses, an unwritable file): the file keeps its old
                // token meanwhile, so an operator must hear about it.
                failures.failed(&describe(&e), wait);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Logs and prints one written token, by its identity and expiry: never the token.
pub(crate) fn report(file: &JwtSvidFile, renewed: &Renewed) {
    let expiry = humantime::format_rfc3339_seconds(renewed.expiry);
    tracing::info!(
        spiffe_id = %renewed.spiffe_id,
        audience = %file.audience,
        expiry = %expiry,
        "Wrote a JWT-SVID file"
    );
    out!(
        "Wrote {} for {} (JWT-SVID for {}, expires {})",
        renewed.path.display(),
        renewed.spiffe_id,
        file.audience,
        expiry
    );
}

/// When to renew a token that expires at `expiry`: half its remaining life from `now`, and
/// at least [`MIN_REFRESH`].
pub(crate) fn refresh_in(now: SystemTime, expiry: SystemTime) -> Duration {
    let remaining = expiry.duration_since(now).unwrap_or_default();
    (remaining / 2).max(MIN_REFRESH)
}

/// The error with its cause, on one line.
fn describe(e: &RenewError) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn report_for(file: &JwtSvidFile) -> RetryReport {
    RetryReport::new(
        format!(
            "renewing the JWT-SVID file {} (audience {:?})",
            file.file_name, file.audience
        ),
        MAX_RETRY,
    )
}

/// Waits between failed attempts: [`FIRST_RETRY`], doubling up to [`MAX_RETRY`].
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_half_the_remaining_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            refresh_in(now, now + Duration::from_secs(300)),
            Duration::from_secs(150)
        );
        assert_eq!(
            refresh_in(now, now + Duration::from_secs(5)),
            Duration::from_millis(2_500)
        );
    }

    #[test]
    fn renews_soon_but_not_at_once_when_the_token_is_about_to_expire_or_expired() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            refresh_in(now, now + Duration::from_millis(500)),
            MIN_REFRESH
        );
        assert_eq!(refresh_in(now, now - Duration::from_secs(10)), MIN_REFRESH);
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_a_minute() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| backoff.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn only_write_failures_and_refused_requests_end_a_one_shot_renewal() {
        let write = RenewError::Write {
            path: "/x".into(),
            reason: "denied".into(),
        };
        assert!(!write.is_retryable());
        let refused = RenewError::Fetch {
            audience: "db".into(),
            source: ClientError::Status(tonic::Status::invalid_argument("no audience")),
        };
        assert!(!refused.is_retryable());
        let no_identity_yet = RenewError::Fetch {
            audience: "db".into(),
            source: ClientError::Status(tonic::Status::permission_denied("no identity")),
        };
        assert!(no_identity_yet.is_retryable());
    }
}
