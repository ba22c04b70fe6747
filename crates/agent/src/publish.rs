//! What goes over the wire to the API server, and nothing else does: GET the Node (adopt its
//! conditions), server-side apply of `nodes/status` (our conditions), POST Events
//! (events.k8s.io/v1). Requests are built with kube's own request builder, so paths, query
//! parameters and content types are exactly what kube's typed `Api` would send:
//! `PATCH /api/v1/nodes/N/status?&force=true&fieldManager=node-doctor` with
//! `application/apply-patch+yaml`.
//!
//! Every apply carries the complete set of the manager's types: server-side apply removes
//! the fields a manager stops applying, so a type node-doctor no longer configures goes
//! away by itself (node-problem-detector's stale conditions after a config change), and
//! nothing of kubelet's or another manager's is touched.

use crate::catalog;
use crate::conditions::{CondState, Status};
use crate::events::EventQueue;
use crate::metrics::Metrics;
use kube::core::params::{GetParams, Patch, PatchParams, PostParams};
use node_doctor_core::time::rfc3339_seconds;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How a request failed, as the agent acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// 409: a field is owned by another manager (a type node-problem-detector owns).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 403: RBAC (at start, often a race with the RoleBinding's creation).
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Anything else: 5xx, timeouts, connection refused.
    #[error("{0}")]
    Other(String),
}

impl PublishError {
    /// The `result` label of `node_doctor_publish_requests_total`.
    pub fn label(&self) -> &'static str {
        match self {
            PublishError::Conflict(_) => "conflict",
            PublishError::Forbidden(_) => "forbidden",
            PublishError::NotFound(_) => "not_found",
            PublishError::Other(_) => "error",
        }
    }
}

fn classify(e: kube::Error) -> PublishError {
    match e {
        kube::Error::Api(s) if s.code == 409 => PublishError::Conflict(s.message),
        kube::Error::Api(s) if s.code == 403 => PublishError::Forbidden(s.message),
        kube::Error::Api(s) if s.code == 404 => PublishError::NotFound(s.message),
        e => PublishError::Other(e.to_string()),
    }
}

/// A condition as read from the Node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCondition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_ms: u64,
}

/// What the agent reads from its Node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub uid: Option<String>,
    pub boot_id: Option<String>,
    pub conditions: Vec<NodeCondition>,
}

pub fn parse_node(v: &Value) -> NodeInfo {
    let conditions = v["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    Some(NodeCondition {
                        type_: c["type"].as_str()?.to_string(),
                        status: c["status"].as_str()?.to_string(),
                        reason: c["reason"].as_str().unwrap_or("").to_string(),
                        message: c["message"].as_str().unwrap_or("").to_string(),
                        last_transition_ms: c["lastTransitionTime"]
                            .as_str()
                            .and_then(node_doctor_core::time::parse_rfc3339_prefix)
                            .unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    NodeInfo {
        uid: v["metadata"]["uid"].as_str().map(str::to_string),
        boot_id: v["status"]["nodeInfo"]["bootID"]
            .as_str()
            .map(str::to_string),
        conditions,
    }
}

/// The server-side apply body for `conditions` (all of one manager's types).
pub fn apply_body(node: &str, conditions: &[CondState], heartbeat_ms: u64) -> Value {
    let conds: Vec<Value> = conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.type_,
                "status": c.status.as_str(),
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": rfc3339_seconds(c.last_transition_ms),
                "lastHeartbeatTime": rfc3339_seconds(heartbeat_ms),
            })
        })
        .collect();
    // No conditions: no `conditions` key at all, so the apply claims nothing and the API
    // server removes every condition this manager owned (an explicit empty list is a value
    // of its own in server-side apply).
    let status = if conds.is_empty() {
        json!({})
    } else {
        json!({"conditions": conds})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node},
        "status": status,
    })
}

/// RFC 3339 with microseconds, as `MicroTime` wants it.
pub fn micro_time(ms: u64) -> String {
    let s = rfc3339_seconds(ms);
    format!("{}.{:03}000Z", s.trim_end_matches('Z'), ms % 1000)
}

/// An Event to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// "Warning" or "Normal".
    pub type_: &'static str,
    /// PascalCase.
    pub reason: String,
    /// What node-doctor did or saw: "Detected", "Cleared", "Unknown", "Logged".
    pub action: &'static str,
    /// ≤ 1 KiB.
    pub note: String,
    /// The finding key or condition type it is about (for de-duplication, not sent).
    pub key: String,
    pub at_ms: u64,
}

/// An events.k8s.io/v1 Event on the Node. Node events live in `default` (the Node is
/// cluster-scoped). The name is unique per event, so a changed note is never folded into
/// an earlier event's series and lost (the trap of kube's and client-go's recorders, which
/// key repeats on type/action/reason/regarding/related and keep the first note).
pub fn event_body(
    node: &str,
    node_uid: Option<&str>,
    instance: &str,
    seq: u64,
    ev: &EventSpec,
) -> Value {
    let mut regarding = json!({"apiVersion": "v1", "kind": "Node", "name": node});
    if let Some(uid) = node_uid {
        regarding["uid"] = Value::from(uid);
    }
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{node}.nd.{:x}.{seq:x}", ev.at_ms),
            "namespace": "default",
        },
        "eventTime": micro_time(ev.at_ms),
        "reportingController": "node-doctor",
        "reportingInstance": instance,
        "action": ev.action,
        "reason": ev.reason,
        "regarding": regarding,
        "note": crate::conditions::message(&ev.note),
        "type": ev.type_,
    })
}

/// The API server of one Node.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    pub node: String,
}

impl Kube {
    pub async fn get_node(&self) -> Result<NodeInfo, PublishError> {
        let req = kube::core::Request::new("/api/v1/nodes")
            .get(&self.node, &GetParams::default())
            .map_err(|e| PublishError::Other(e.to_string()))?;
        let v: Value = self.client.request(req).await.map_err(classify)?;
        Ok(parse_node(&v))
    }

    /// Applies `conditions` as `manager` (forced for node-doctor's own types).
    pub async fn apply(
        &self,
        manager: &str,
        force: bool,
        conditions: &[CondState],
        heartbeat_ms: u64,
    ) -> Result<(), PublishError> {
        let mut pp = PatchParams::apply(manager);
        if force {
            pp = pp.force();
        }
        let body = apply_body(&self.node, conditions, heartbeat_ms);
        let req = kube::core::Request::new("/api/v1/nodes")
            .patch_subresource("status", &self.node, &pp, &Patch::Apply(&body))
            .map_err(|e| PublishError::Other(e.to_string()))?;
        let _: Value = self.client.request(req).await.map_err(classify)?;
        Ok(())
    }

    pub async fn post_event(&self, body: &Value) -> Result<(), PublishError> {
        let data = serde_json::to_vec(body).map_err(|e| PublishError::Other(e.to_string()))?;
        let req = kube::core::Request::new("/apis/events.k8s.io/v1/namespaces/default/events")
            .create(&PostParams::default(), data)
            .map_err(|e| PublishError::Other(e.to_string()))?;
        let _: Value = self.client.request(req).await.map_err(classify)?;
        Ok(())
    }
}

/// Whether a condition is one node-doctor should write: present in what it configures.
pub fn status_of(s: &str) -> Option<Status> {
    Status::parse(s)
}

/// What the publisher should hold on the Node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub own: Vec<CondState>,
    pub npd: Vec<CondState>,
    /// The first full evaluation after adoption is done: publishing may start.
    pub ready: bool,
}

/// Adopts the Node's conditions, then applies what the engine wants: on change, and every
/// heartbeat (with jitter). Errors back off (1 s doubling to 60 s) and are counted; the
/// API server being down only delays publishing.
pub async fn publisher(
    kube: Kube,
    mut desired: watch::Receiver<Desired>,
    adopt_tx: mpsc::Sender<NodeInfo>,
    metrics: Arc<Metrics>,
    heartbeat_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    // Adoption first: nothing is written before the Node's conditions are known.
    loop {
        match kube.get_node().await {
            Ok(node) => {
                metrics.publish("node", "ok", crate::wall_ms());
                let _ = adopt_tx.send(node).await;
                break;
            }
            Err(e) => {
                metrics.publish("node", e.label(), crate::wall_ms());
                crate::log(format!(
                    "reading Node {}: {e} (retrying in {}s)",
                    kube.node,
                    backoff.as_secs()
                ));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
    let mut published: Option<Desired> = None;
    let mut last_write = Instant::now();
    let mut npd_blocked = false;
    backoff = Duration::from_secs(1);
    loop {
        let cur = desired.borrow_and_update().clone();
        // Jitter from the node name: nodes do not heartbeat in lockstep.
        let jitter = Duration::from_millis(
            kube.node
                .bytes()
                .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
                % 30_000,
        );
        let heartbeat_due = last_write.elapsed() >= Duration::from_millis(heartbeat_ms) + jitter;
        let changed = published
            .as_ref()
            .is_none_or(|p| p.own != cur.own || p.npd != cur.npd);
        let mut failed = false;
        let ready = cur.ready;
        if ready && (changed || heartbeat_due) {
            let now = crate::wall_ms();
            match kube.apply(catalog::OWN_MANAGER, true, &cur.own, now).await {
                Ok(()) => metrics.publish("conditions", "ok", now),
                Err(e) => {
                    metrics.publish("conditions", e.label(), now);
                    crate::log(format!("applying conditions: {e}"));
                    failed = true;
                }
            }
            if !npd_blocked
                && (!cur.npd.is_empty() || published.as_ref().is_some_and(|p| !p.npd.is_empty()))
            {
                match kube.apply(catalog::NPD_MANAGER, false, &cur.npd, now).await {
                    Ok(()) => metrics.publish("npd_conditions", "ok", now),
                    Err(PublishError::Conflict(m)) => {
                        metrics.publish("npd_conditions", "conflict", now);
                        crate::log(format!(
                            "node-problem-detector owns some of the NPD-named conditions ({m}); leaving them to it"
                        ));
                        npd_blocked = true;
                    }
                    Err(e) => {
                        metrics.publish("npd_conditions", e.label(), now);
                        crate::log(format!("applying NPD-named conditions: {e}"));
                        failed = true;
                    }
                }
            }
            if !failed {
                published = Some(cur);
                last_write = Instant::now();
                backoff = Duration::from_secs(1);
            }
        }
        let wait = if failed {
            let b = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(60));
            b
        } else if !ready {
            // Nothing is written before the first full evaluation; becoming ready changes
            // `desired`, which wakes this at once. The timer is only a backstop.
            Duration::from_millis(heartbeat_ms)
        } else {
            // Nothing to write until the conditions change (which wakes this at once) or the
            // heartbeat falls due: an idle agent does not wake to find nothing to do.
            (Duration::from_millis(heartbeat_ms) + jitter)
                .saturating_sub(last_write.elapsed())
                .max(Duration::from_secs(1))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            r = desired.changed(), if !failed => { if r.is_err() { return; } }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Posts queued Events, oldest first, backing off while the API server refuses.
pub async fn event_sender(
    kube: Kube,
    queue: Arc<Mutex<EventQueue>>,
    metrics: Arc<Metrics>,
    instance: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut seq: u64 = 0;
    let mut node_uid: Option<String> = None;
    let queued = match queue.lock() {
        Ok(q) => q.queued(),
        Err(e) => e.into_inner().queued(),
    };
    loop {
        if node_uid.is_none()
            && let Ok(n) = kube.get_node().await
        {
            node_uid = n.uid;
        }
        let next = queue.lock().ok().and_then(|q| q.front().cloned());
        let idle = next.is_none();
        let wait = match next {
            // Idle: a push wakes this (`notify_one` keeps the permit when nobody waits yet, so
            // a push between the look at the queue and the wait is not missed); the timer is
            // only a backstop.
            None => Duration::from_secs(60),
            Some(ev) => {
                seq = seq.wrapping_add(1);
                let body = event_body(&kube.node, node_uid.as_deref(), &instance, seq, &ev);
                match kube.post_event(&body).await {
                    Ok(()) => {
                        metrics.publish("events", "ok", crate::wall_ms());
                        if let Ok(mut q) = queue.lock() {
                            // The front is still ours unless the queue overflowed meanwhile.
                            if q.front() == Some(&ev) {
                                q.pop();
                            }
                            metrics.events(q.len(), q.take_dropped());
                        }
                        backoff = Duration::from_secs(1);
                        Duration::ZERO
                    }
                    Err(e) => {
                        metrics.publish("events", e.label(), crate::wall_ms());
                        let b = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        b
                    }
                }
            }
        };
        if wait.is_zero() {
            continue;
        }
        // Idle: woken by the next push. Backing off: the backoff holds even if more come.
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = queued.notified(), if idle => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
