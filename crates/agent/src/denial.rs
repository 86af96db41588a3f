//! Why the server refuses the agent itself (not one request): SPIRE's `PermissionDeniedDetails`,
//! attached to `PermissionDenied` answers in the gRPC status details. An agent that was evicted
//! or whose certificate is no longer the current one may cure that by attesting again; a banned
//! agent may not. A Lanyard server and a SPIRE server both attach the details.

use lanyard_proto::spire::api::types::PermissionDeniedDetails;
use lanyard_proto::spire::api::types::permission_denied_details::Reason;
use prost::Message as _;

/// The type URL of `PermissionDeniedDetails` inside a `google.protobuf.Any`.
const DETAILS_URL: &str = "type.googleapis.com/spire.api.types.PermissionDeniedDetails";

/// What the server said about the agent's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// Evicted, expired or holding a stale certificate: a new attestation may help (SPIRE's
    /// `AGENT_NOT_ATTESTED`, `AGENT_NOT_ACTIVE`, `AGENT_EXPIRED`, `AGENT_MUST_REATTEST`).
    MustReattest,
    /// Banned: the server refuses the agent until an operator evicts it (`AGENT_BANNED`).
    Banned,
}

impl Denial {
    /// The denial carried by `status`, if it is a `PermissionDenied` with SPIRE's details.
    pub(crate) fn of(status: &tonic::Status) -> Option<Self> {
        if status.code() != tonic::Code::PermissionDenied || status.details().is_empty() {
            return None;
        }
        let decoded = RpcStatus::decode(status.details()).ok()?;
        decoded
            .details
            .iter()
            .filter(|any| any.type_url == DETAILS_URL)
            .filter_map(|any| PermissionDeniedDetails::decode(any.value.as_slice()).ok())
            .find_map(|details| match Reason::try_from(details.reason).ok()? {
                Reason::AgentBanned => Some(Self::Banned),
                Reason::AgentExpired
                | Reason::AgentNotAttested
                | Reason::AgentNotActive
                | Reason::AgentMustReattest => Some(Self::MustReattest),
                Reason::Unknown => None,
            })
    }
}

/// The gRPC status details message (`google.rpc.Status`).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(reason: Reason, type_url: &str) -> tonic::Status {
        let details = PermissionDeniedDetails {
            reason: reason.into(),
        };
        let status = RpcStatus {
            code: tonic::Code::PermissionDenied as i32,
            message: "refused".into(),
            details: vec![prost_types::Any {
                type_url: type_url.into(),
                value: details.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(
            tonic::Code::PermissionDenied,
            "refused",
            status.encode_to_vec().into(),
        )
    }

    #[test]
    fn evicted_and_stale_agents_may_reattest_banned_ones_may_not() {
        for reason in [
            Reason::AgentNotAttested,
            Reason::AgentNotActive,
            Reason::AgentExpired,
            Reason::AgentMustReattest,
        ] {
            assert_eq!(
                Denial::of(&denied(reason, DETAILS_URL)),
                Some(Denial::MustReattest),
                "{reason:?}"
            );
        }
        assert_eq!(
            Denial::of(&denied(Reason::AgentBanned, DETAILS_URL)),
            Some(Denial::Banned)
        );
    }

    #[test]
    fn refusals_without_spire_details_are_not_about_the_agent() {
        assert_eq!(
            Denial::of(&tonic::Status::permission_denied("agent x is banned")),
            None
        );
        assert_eq!(Denial::of(&denied(Reason::Unknown, DETAILS_URL)), None);
        assert_eq!(
            Denial::of(&denied(
                Reason::AgentBanned,
                "type.googleapis.com/other.Details"
            )),
            None
        );
        let garbage = tonic::Status::with_details(
            tonic::Code::PermissionDenied,
            "x",
            vec![0xff, 0xff].into(),
        );
        assert_eq!(Denial::of(&garbage), None);
    }
}
