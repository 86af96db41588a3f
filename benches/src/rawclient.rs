//! A bare Workload API client for the latency and fan-out benchmarks: the generated stub with
//! the security header and nothing else, so the figures are the agent's and the transport's,
//! not the time our client library spends checking certificates and keys.

use lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_proto::workload::{X509svidRequest, X509svidResponse};
use tonic::Streaming;
use tonic::transport::Channel;

/// Connects to the Workload API socket at `path`.
pub(crate) async fn connect(
    path: &std::path::Path,
) -> anyhow::Result<SpiffeWorkloadApiClient<Channel>> {
    let channel = lanyard_workload::client::unix_channel(path).await?;
    Ok(SpiffeWorkloadApiClient::new(channel))
}

/// Opens `FetchX509SVID` and waits for its first message.
pub(crate) async fn open_x509(
    client: &mut SpiffeWorkloadApiClient<Channel>,
) -> anyhow::Result<(X509svidResponse, Streaming<X509svidResponse>)> {
    let mut request = tonic::Request::new(X509svidRequest {});
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    let mut stream = client.fetch_x509svid(request).await?.into_inner();
    let first = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("FetchX509SVID ended without a message"))?;
    anyhow::ensure!(
        !first.svids.is_empty(),
        "FetchX509SVID answered without SVIDs"
    );
    Ok((first, stream))
}
