//! Amazon GuardDuty findings: raw, in an EventBridge event (`detail`), or in a `findings` array
//! (the first finding is normalized; use [`crate::split_batch`] for all of them).

use serde_json::Value;

use super::{Mapped, scaled_severity};
use crate::fields::{get, hashes, ip, long_text, text, time};
use crate::model::NormalizeError;
use crate::severity;

pub(crate) fn map(payload: &Value) -> Result<(Mapped, &Value), NormalizeError> {
    let f = finding(payload)?;
    let (severity, severity_original) = scaled_severity(get(f, "severity"), severity::guardduty);
    let (source_ip, dest_ip) = addresses(f);
    let mut m = Mapped {
        title: text(f, &["title"]),
        description: long_text(f, &["description"]),
        severity,
        severity_original,
        source_id: text(f, &["id"]),
        rule_name: text(f, &["type"]),
        rule_id: None,
        event_time: time(f, &["service.eventFirstSeen", "createdAt", "updatedAt"]),
        source_ip,
        dest_ip,
        hostname: text(
            f,
            &[
                "resource.instanceDetails.instanceId",
                "resource.eksClusterDetails.name",
                "resource.rdsDbInstanceDetails.dbInstanceIdentifier",
            ],
        ),
        username: text(
            f,
            &[
                "resource.accessKeyDetails.userName",
                "resource.kubernetesDetails.kubernetesUserDetails.username",
                "resource.rdsDbUserDetails.user",
            ],
        ),
        process: text(f, &["service.runtimeDetails.process.name"]),
        url: None,
        tags: [
            text(f, &["resource.resourceType"]),
            text(f, &["service.action.actionType"]),
        ]
        .into_iter()
        .flatten()
        .collect(),
        ..Mapped::default()
    };
    hashes(
        f,
        &["service.runtimeDetails.process.executableSha256"],
        &mut m.file_hashes,
    );
    Ok((m, f))
}

fn finding(payload: &Value) -> Result<&Value, NormalizeError> {
    let root = match payload.get("detail") {
        Some(d @ Value::Object(_)) => d,
        _ => payload,
    };
    match root.get("findings") {
        Some(Value::Array(items)) => items
            .iter()
            .find(|f| f.is_object())
            .ok_or(NormalizeError::EmptyBatch { field: "findings" }),
        _ => Ok(root),
    }
}

/// Remote party vs. the AWS resource, by action type. For network connections the direction
/// decides which side is the source; API calls, port probes, Kubernetes API calls and RDS logins
/// come from the remote IP towards the resource.
fn addresses(f: &Value) -> (Option<std::net::IpAddr>, Option<std::net::IpAddr>) {
    let local = ip(
        f,
        &[
            "resource.instanceDetails.networkInterfaces.privateIpAddress",
            "resource.instanceDetails.networkInterfaces.privateIpAddresses.privateIpAddress",
        ],
    );
    let remote_of = |action: &str| {
        let v4 = format!("service.action.{action}.remoteIpDetails.ipAddressV4");
        let v6 = format!("service.action.{action}.remoteIpDetails.ipAddressV6");
        ip(f, &[v4.as_str(), v6.as_str()])
    };
    if get(f, "service.action.networkConnectionAction").is_some() {
        let remote = remote_of("networkConnectionAction");
        let outbound = text(
            f,
            &["service.action.networkConnectionAction.connectionDirection"],
        )
        .is_some_and(|d| d.eq_ignore_ascii_case("OUTBOUND"));
        return if outbound {
            (local, remote)
        } else {
            (remote, local)
        };
    }
    if get(f, "service.action.portProbeAction").is_some() {
        let remote = ip(
            f,
            &[
                "service.action.portProbeAction.portProbeDetails.remoteIpDetails.ipAddressV4",
                "service.action.portProbeAction.portProbeDetails.remoteIpDetails.ipAddressV6",
            ],
        );
        return (remote, local);
    }
    for action in [
        "awsApiCallAction",
        "kubernetesApiCallAction",
        "rdsLoginAttemptAction",
    ] {
        if get(f, &format!("service.action.{action}")).is_some() {
            return (remote_of(action), None);
        }
    }
    if get(f, "service.action.dnsRequestAction").is_some() {
        return (local, None);
    }
    (None, None)
}
